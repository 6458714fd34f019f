"""The closure service: on-site checks (核查), rework (返工), closure (结案), cancellation (作废), and
replies to the hotline.
"""
