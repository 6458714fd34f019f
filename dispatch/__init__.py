"""The dispatch service: routing rules, manual dispatch and re-dispatch (派遣), handling deadlines in
working time, extensions, suspensions, and the timers that report missed deadlines and raise
supervision notices (督办).
"""
