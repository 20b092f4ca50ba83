"""Notifications for the user's open JupyterLabs: posted by services, polled by the front end."""
