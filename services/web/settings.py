"""Settings of the web front end, each read from the environment variable of the same name."""

from pathlib import Path

from shared.settings import Settings


class WebSettings(Settings):
    """The shared settings plus where the other services are, sessions and the demo accounts."""

    workflow_url: str = "http://127.0.0.1:8082"
    allocation_url: str = "http://127.0.0.1:8083"
    notifications_url: str = "http://127.0.0.1:8084"
    documents_url: str = "http://127.0.0.1:8085"
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
    # OpenID Connect for councils: when the issuer, client id and secret are all set, the sign-in page
    # offers "Sign in with your council account" (authorization-code flow with PKCE); else local only.
    web_oidc_issuer: str = ""
    web_oidc_client_id: str = ""
    web_oidc_client_secret: str = ""
    web_oidc_scopes: str = "openid profile email"
    # the claim naming the local user; roles and teams from these claims when the token carries them,
    # else from the local users table (a council user with neither is refused)
    web_oidc_username_claim: str = "preferred_username"
    web_oidc_roles_claim: str = "tessera_roles"
    web_oidc_teams_claim: str = "tessera_teams"
    # where the issuer sends the browser back; empty: this site's /login/oidc/callback as requested
    web_oidc_redirect_uri: str = ""

    @property
    def oidc_enabled(self) -> bool:
        return bool(self.web_oidc_issuer and self.web_oidc_client_id and self.web_oidc_client_secret)
