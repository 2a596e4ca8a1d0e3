"""Settings of the web front end, each read from the environment variable of the same name."""

from pathlib import Path

from shared.settings import Settings


class WebSettings(Settings):
    """The shared settings plus where the other services are, sessions and the demo accounts."""

    workflow_url: str = "http://127.0.0.1:8082"
    allocation_url: str = "http://127.0.0.1:8083"
    notifications_url: str = "http://127.0.0.1:8084"
    http_timeout_seconds: float = 5.0
    # signs the session cookie; empty: a key is generated once and kept in the web schema
    web_secret_key: str = ""
    web_session_idle_minutes: int = 240
    web_session_max_hours: int = 12
    web_cookie_secure: bool = False
    # seed the demo accounts of users.yaml (a demo or a test; off in production)
    web_seed_demo_users: bool = True
    web_demo_users_file: Path = Path(__file__).parent / "users.yaml"
    web_demo_password: str = "tessera-demo"
    # how long a page waits for a command's outcome before saying it is still on its way
    web_command_timeout_seconds: float = 15.0
    # a recorded reason opens a person's record to the worker for this long (break-glass)
    web_break_glass_hours: int = 8
    web_max_failed_logins: int = 5
    web_lockout_minutes: int = 5
