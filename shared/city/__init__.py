"""The city: its reference data (model and loader), its working calendar and its geometry."""
