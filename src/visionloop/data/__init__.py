"""Data generation and dataset helpers of visionloop."""
