"""The ``defstab`` command line."""
