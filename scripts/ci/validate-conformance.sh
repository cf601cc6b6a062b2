#!/usr/bin/env bash
# HAPI FHIR's validator over the project's conformance resources and a sample of live responses (issue 16;
# docs/conformance.md, "HAPI's validator over our resources"): builds validator/ when it changed, writes
# the sample (test/conformance/liveSample.ts, the real server on the embedded store), validates offline and
# leaves the summary in OUT/summary.json. Exit status non-zero when a file has an error that
# validator/allowed.json does not name, or when one of validator/must-fail/ (what the validator must still
# catch: an unknown linkId, a named Patient, an empty array, a non-R4 type) has none.
#
# Usage: scripts/ci/validate-conformance.sh [OUT]   (default test-output/validator)
# Needs Java 17 and Maven (scripts/ci/start-hapi.sh installs them) and the npm install.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
OUT="${1:-test-output/validator}"
MODULE="validator"
JAR="$MODULE/target/norpain-validator.jar"

if [[ ! -s "$JAR" ]] || [[ -n "$(find "$MODULE/pom.xml" "$MODULE/src" -newer "$JAR" -print -quit)" ]]; then
  # Offline when ~/.m2 holds what it needs (the HAPI build brought most of it); otherwise from Maven Central.
  (cd "$MODULE" && { mvn -q -B -Dstyle.color=never -o package -DskipTests 2>/dev/null || mvn -q -B -Dstyle.color=never package -DskipTests; }) >&2
fi

rm -rf "$OUT"
npx tsx test/conformance/liveSample.ts "$OUT/live" >&2
exec java -Xmx1g -jar "$JAR" \
  --conformance profiles/fsh-generated/resources --conformance questionnaires --conformance "$OUT/terminology" \
  --allow "$MODULE/allowed.json" --out "$OUT/summary.json" --must-fail "$MODULE/must-fail" \
  profiles/fsh-generated/resources questionnaires "$OUT/live"
