"""Settings that would break a guarantee are refused at start, naming both values."""

import pytest
from pydantic import ValidationError

from shared.settings import Settings


def test_an_inbox_retention_not_longer_than_the_outbox_window_is_refused():
    with pytest.raises(ValidationError) as refused:
        Settings(inbox_retention_days=1, outbox_retention_hours=24)
    assert "INBOX_RETENTION_DAYS (1 days)" in str(refused.value)
    assert "OUTBOX_RETENTION_HOURS (24 hours)" in str(refused.value)



# --- issue #21 §4: transport -------------------------------------------------------------------------


def test_kafka_over_sasl_and_tls_reaches_every_client_of_a_component():
    import ssl

    from shared.broker import connection_options, make_broker, producer_options

    settings = Settings(kafka_security_protocol="SASL_SSL", kafka_sasl_username="workflow",
                        kafka_sasl_password="s3cret")
    options = connection_options(settings)
    assert (options["security_protocol"], options["sasl_mechanism"], options["sasl_plain_username"]) == (
        "SASL_SSL", "SCRAM-SHA-512", "workflow")
    assert options["ssl_context"].verify_mode == ssl.CERT_REQUIRED and options["ssl_context"].check_hostname
    assert producer_options(settings)["security_protocol"] == "SASL_SSL"
    consumers = make_broker(settings).config.broker_config.builder.keywords  # what each subscriber is built with
    assert (consumers["security_protocol"], consumers["sasl_plain_username"]) == ("SASL_SSL", "workflow")
    assert "security_protocol" not in connection_options(Settings())  # the embedded broker: plain


def test_sasl_without_credentials_and_half_a_client_certificate_are_refused_by_name():
    with pytest.raises(ValueError, match="KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"):
        Settings(kafka_security_protocol="SASL_PLAINTEXT")
    with pytest.raises(ValueError, match="KAFKA_SSL_CERTFILE and KAFKA_SSL_KEYFILE"):
        Settings(kafka_security_protocol="SSL", kafka_ssl_certfile="client.pem")


def test_smtp_starttls_verifies_the_servers_certificate_and_name():
    import ssl

    from services.notifications.senders import EmailSender

    context = EmailSender("smtp", 587, "x@example.org", starttls=True).tls_context()
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
