"""The handling service: the departments' side: each department's inbox, signing (签收), returns
(回退), requests for more time, and reports back with photos (处置反馈).
"""
