"""Model images and deployments (see docs/deployments.md)."""
