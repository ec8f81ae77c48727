"""Administration: queues, service types, agencies, users and the IVR menu editor."""
