"""Run the referrals service: `python -m services.referrals`."""

from services.referrals.app import app, settings
from shared.service import serve

serve(app, settings)
