from tests.api.conftest import api, deployer  # noqa: F401 - the API tests' clients, for the preview endpoints
