"""Pose estimator back-ends (MoveNet, YOLO-pose, RTMPose) and the optional 3D lifter.

Use :func:`csip_reid.pipeline.pose.create_pose` rather than these modules directly.
"""
