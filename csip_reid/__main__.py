from csip_reid.cli import main

main()
