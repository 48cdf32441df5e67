"""The transmit / worker / process job stream, in ansible-runner 2.4.3's wire format."""
