"""What the two API backends (api_docker, api_podman) read from an engine's HTTP answers."""

from __future__ import annotations

import requests.exceptions

NOT_MODIFIED = 304  # a stop of a container that is stopped already
CONFLICT = 409  # a container in use, or not running
# the connection refused or cut mid-stream
BROKEN = (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError)
