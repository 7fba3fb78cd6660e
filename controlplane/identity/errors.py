class IdentityRefused(Exception):
    """Credentials that were presented but cannot be accepted. The message never contains them."""

    def __init__(self, message: str, status: int = 401):
        super().__init__(message)
        self.status = status
