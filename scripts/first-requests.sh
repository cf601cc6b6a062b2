#!/usr/bin/env bash
# The README's first requests, run one after another with curl against a running development server
# (`npm start` in another terminal): create a Patient, find it by national id and by _lastUpdated, a
# transaction that creates a Patient and a QuestionnaireResponse referencing it by urn:uuid, paging
# through 120 Patients with _count=50, and a 422 OperationOutcome for an invalid resource.
# Every person is synthetic (fødselsnummer with month + 80). Usage: scripts/first-requests.sh
#   BASE      FHIR base (default http://localhost:8080/fhir)
#   DATA_DIR  the server's data folder, for the development token (default ./data)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

BASE="${BASE:-http://localhost:8080/fhir}"
FNR_SYSTEM='urn:oid:2.16.578.1.12.4.1.4.1'
TOKEN="$(npx --no-install norpain token --role clinic --org 999001)"
ADMIN_TOKEN="$(npx --no-install norpain token --role registry-admin)"

# Prints the JSON value at a dotted path of stdin (e.g. "issue.0.expression.0"), for the checks below.
pick() { node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{let v=JSON.parse(s);for(const k of process.argv[1].split("."))v=v?.[k];console.log(typeof v==="object"?JSON.stringify(v):v??"")})' "$1"; }
# Synthetic fødselsnumre from the project's generator.
fnrs() { npx --no-install tsx -e "import { syntheticNationalId } from './src/identity'; for (let i = 0; i < $1; i++) console.log(syntheticNationalId('fnr'));"; }
fhir() {
  local method="$1" path="$2"
  shift 2
  curl -sS -X "$method" "$BASE/$path" -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/fhir+json' -H 'Accept: application/fhir+json' "$@"
}

started="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
fnr="$(fnrs 1)"

echo "1. create a Patient (the response holds the registry pseudonym, not the national id)"
patient="$(fhir POST Patient -d "{\"resourceType\":\"Patient\",\"identifier\":[{\"system\":\"$FNR_SYSTEM\",\"value\":\"$fnr\"}],\"gender\":\"female\",\"birthDate\":\"1980-01-01\"}")"
echo "   id $(pick id <<<"$patient"), identifier $(pick identifier.0.system <<<"$patient")|…, birthDate $(pick birthDate <<<"$patient")"

echo "2. search it by national id, and by _lastUpdated"
echo "   by identifier: $(fhir GET "Patient?identifier=$FNR_SYSTEM%7C$fnr&_total=accurate" | pick total) match(es)"
echo "   by _lastUpdated=ge$started: $(fhir GET "Patient?_lastUpdated=ge$started&_total=accurate" | pick total) match(es)"

echo "3. a transaction: a Patient and a QuestionnaireResponse that references it by urn:uuid"
# Questionnaires are the registry's to publish: registry staff load this small one first.
curl -sS -o /dev/null -X PUT "$BASE/Questionnaire?url=http://example.org/Questionnaire/first-requests" \
  -H "Authorization: Bearer $ADMIN_TOKEN" -H 'Content-Type: application/fhir+json' \
  -d '{"resourceType":"Questionnaire","url":"http://example.org/Questionnaire/first-requests","version":"1","status":"active","item":[{"linkId":"smerte","text":"Smerte nå (0–10)","type":"integer"}]}'
fnr2="$(fnrs 1)"
transaction="$(fhir POST '' -d @- <<EOF
{"resourceType":"Bundle","type":"transaction","entry":[
 {"fullUrl":"urn:uuid:4d3c1b6e-1f7a-4b1e-9a56-0d6f2a1c7e01","resource":{"resourceType":"Patient","identifier":[{"system":"$FNR_SYSTEM","value":"$fnr2"}]},"request":{"method":"POST","url":"Patient"}},
 {"resource":{"resourceType":"QuestionnaireResponse","status":"completed","questionnaire":"http://example.org/Questionnaire/first-requests|1","subject":{"reference":"urn:uuid:4d3c1b6e-1f7a-4b1e-9a56-0d6f2a1c7e01"},"item":[{"linkId":"smerte","answer":[{"valueInteger":6}]}]},"request":{"method":"POST","url":"QuestionnaireResponse"}}]}
EOF
)"
echo "   $(pick entry.0.response.status <<<"$transaction") $(pick entry.0.response.location <<<"$transaction")"
echo "   $(pick entry.1.response.status <<<"$transaction") $(pick entry.1.response.location <<<"$transaction")"

echo "4. 120 Patients, then page through them with _count=50 by following the next links"
page_from="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
entries="$(fnrs 120 | node -e 'const ids=require("fs").readFileSync(0,"utf8").trim().split("\n");console.log(JSON.stringify(ids.map(v=>({resource:{resourceType:"Patient",identifier:[{system:process.argv[1],value:v}],gender:"other"},request:{method:"POST",url:"Patient"}}))))' "$FNR_SYSTEM")"
fhir POST '' -d "{\"resourceType\":\"Bundle\",\"type\":\"transaction\",\"entry\":$entries}" >/dev/null
url="$BASE/Patient?gender=other&_lastUpdated=ge$page_from&_count=50&_total=accurate"
page=1
while [ -n "$url" ]; do
  body="$(curl -sS "$url" -H "Authorization: Bearer $TOKEN")"
  echo "   page $page: $(node -e 'const b=JSON.parse(process.argv[1]);console.log(`${(b.entry??[]).length} of ${b.total}`)' "$body")"
  url="$(node -e 'const b=JSON.parse(process.argv[1]);console.log((b.link??[]).find(l=>l.relation==="next")?.url??"")' "$body")"
  page=$((page + 1))
done

echo "5. an invalid resource gets a 422 OperationOutcome with an expression"
invalid="$(fhir POST Patient -w '\n%{http_code}' -d "{\"resourceType\":\"Patient\",\"identifier\":[{\"system\":\"$FNR_SYSTEM\",\"value\":\"$(fnrs 1)\"}],\"gender\":\"kvinne\"}")"
echo "   HTTP $(tail -1 <<<"$invalid"): $(head -n -1 <<<"$invalid" | pick issue.0.expression.0) — $(head -n -1 <<<"$invalid" | pick issue.0.details.text)"
