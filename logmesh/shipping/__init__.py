"""What every service uses to send its logs: the shipper, its disk spool, and the ``logging`` handler."""
