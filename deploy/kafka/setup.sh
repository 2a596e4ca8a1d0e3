#!/bin/sh
# The broker's principals, topics and access control lists for docker-compose.yml (issue #21 §4), run once by
# the `kafka-setup` container in the broker's own network namespace, before any Tessera container starts.
#
# - one SCRAM-SHA-512 credential per principal, its password from KAFKA_PASSWORD_<NAME> (.env);
# - every topic of docs/contracts.md and its .dlq (topics.txt): the services only check that they exist;
# - the ACLs of acls.txt, written by `python -m tools.kafka_acls --write` from shared/producers.py and the
#   services' subscribers (tests/unit/test_kafka_acls.py checks the file against both).
# Idempotent: re-running it sets the same passwords, keeps existing topics and adds the same ACLs again.
# Never run on the development machines (no Docker engine there): checked by reading and by the unit test only.
set -eu

BIN=/opt/kafka/bin
# the broker's own PLAINTEXT listener on 127.0.0.1: reachable only inside the broker's network namespace
BROKER=127.0.0.1:9094
PRINCIPALS="web referrals workflow allocation notifications documents scheduler clocks intake brokerage finance"

until "$BIN/kafka-broker-api-versions.sh" --bootstrap-server "$BROKER" >/dev/null 2>&1; do sleep 2; done

for name in $PRINCIPALS; do
  variable="KAFKA_PASSWORD_$(echo "$name" | tr '[:lower:]' '[:upper:]')"
  password=$(printenv "$variable" || true)
  if [ -z "$password" ]; then
    echo "set $variable in .env: the password of the broker principal $name" >&2
    exit 1
  fi
  "$BIN/kafka-configs.sh" --bootstrap-server "$BROKER" --alter --entity-type users --entity-name "$name" \
    --add-config "SCRAM-SHA-512=[iterations=8192,password=$password]" >/dev/null
  echo "principal $name: SCRAM-SHA-512 credential set"
done

while read -r topic; do
  "$BIN/kafka-topics.sh" --bootstrap-server "$BROKER" --create --if-not-exists --topic "$topic" \
    --partitions "${TOPIC_PARTITIONS:-4}" --replication-factor "${TOPIC_REPLICATION_FACTOR:-1}" \
    --config message.timestamp.type=LogAppendTime >/dev/null
done < /kafka/topics.txt
echo "topics: $(wc -l < /kafka/topics.txt) present"

grep -v '^#' /kafka/acls.txt | while read -r acl; do
  # shellcheck disable=SC2086 # one argument list per line, split on purpose
  "$BIN/kafka-acls.sh" --bootstrap-server "$BROKER" --add $acl >/dev/null
done
echo "ACLs: $(grep -vc '^#' /kafka/acls.txt) argument lists added"
