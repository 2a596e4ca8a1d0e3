"""Settings of the web front end, each read from the environment variable of the same name."""

from pathlib import Path

from shared.settings import Settings


class WebSettings(Settings):
    """The shared settings plus where the other services are, sessions and the demo accounts."""

    workflow_url: str = "http://127.0.0.1:8082"
    allocation_url: str = "http://127.0.0.1:8083"
    notifications_url: str = "http://127.0.0.1:8084"
    documents_url: str = "http://127.0.0.1:8085"
    clocks_url: str = "http://127.0.0.1:8087"
    # signs the session cookie; empty: a key is generated once and kept in the web schema
    web_secret_key: str = ""
    web_session_idle_minutes: int = 240
    web_session_max_hours: int = 12
    # cookies only over HTTPS; unset: outside development
    web_cookie_secure: bool | None = None
    # the demo accounts of users.yaml (published password); unset: on in development only. Refused in
    # production; switched off, the demo accounts are disabled at start-up.
    web_seed_demo_users: bool | None = None
    web_demo_users_file: Path = Path(__file__).parent / "users.yaml"
    web_demo_password: str = "tessera-demo"
    # the rule book the desk serves at /rules and links every rule id in a message to (issue #22 §9); the image
    # copies docs/rules.md beside the project (deploy/Dockerfile)
    web_rules_file: Path = Path(__file__).resolve().parents[2] / "docs" / "rules.md"
    # how long a page waits for a command's outcome before saying it is still on its way
    web_command_timeout_seconds: float = 15.0
    # a recorded reason opens a person's record to the worker for this long (break-glass)
    web_break_glass_hours: int = 8
    # failed sign-ins counted over this window: from one address to one account, and from one address to any;
    # beyond either limit that address is answered 429 until the window moves on (no account is locked)
    web_sign_in_window_seconds: float = 300.0
    web_sign_in_failures_per_account: int = 5
    web_sign_in_failures_per_address: int = 30
    # OpenID Connect for councils: when the issuer, client id and secret are all set, the sign-in page
    # offers "Sign in with your council account" (authorization-code flow with PKCE); else local only.
    web_oidc_issuer: str = ""
    web_oidc_client_id: str = ""
    web_oidc_client_secret: str = ""
    web_oidc_scopes: str = "openid profile email"
    # A council account is bound to the token's issuer and `sub`, never to a name. The first sign-in links it to
    # the local account with the same email when the token says `email_verified` (never an administrator's), else
    # creates one when the token carries roles (named after this claim, made unique). Roles and teams come from
    # these claims when present, else from the local account; `administrator` never comes from a claim.
    web_oidc_username_claim: str = "preferred_username"
    web_oidc_roles_claim: str = "tessera_roles"
    web_oidc_teams_claim: str = "tessera_teams"
    # where the issuer sends the browser back; empty: this site's /login/oidc/callback as requested
    web_oidc_redirect_uri: str = ""

    def refusal(self) -> str | None:
        """Why the desk must not start with these settings, or None."""
        if self.web_seed_demo_users and not self.development:
            return ("WEB_SEED_DEMO_USERS=true is refused in production (TESSERA_ENVIRONMENT is not development):"
                    " the demo accounts' password is published. Unset WEB_SEED_DEMO_USERS (the demo accounts are"
                    " then disabled) or run in development (make run)")
        return None

    @property
    def demo_accounts(self) -> bool:
        return self.development if self.web_seed_demo_users is None else self.web_seed_demo_users

    @property
    def cookies_secure(self) -> bool:
        return not self.development if self.web_cookie_secure is None else self.web_cookie_secure

    @property
    def oidc_enabled(self) -> bool:
        return bool(self.web_oidc_issuer and self.web_oidc_client_id and self.web_oidc_client_secret)
