"""The assessment service: the indicators computed as a stream from the case event log, rankings,
bulletins and the dashboard (综合评价).
"""
