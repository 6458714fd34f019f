"""Talking to other systems: the hotline's and departments' signed webhooks, both ways.

``signing`` signs and verifies one request (Standard Webhooks, or the app-key form of Chinese
government interfaces); ``endpoints`` reads the city's ``integrations.yaml``: who may send us
what, and where and how we send.
"""
