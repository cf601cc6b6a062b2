"""The researcher's example analysis (issue 13): the export's NDJSON files loaded unchanged into DuckDB
(read_json, newline-delimited), and per person: sex, age band, and pain intensity (NRS, average over the
last week, linkId nrs-gjennomsnitt) at baseline and at 12 months (the mean where a person has several).

    python3 example_table.py DIR      prints the table as JSON rows [person, sex, age_band, baseline, month12]
"""
import json
import sys

import duckdb

BASELINE = "https://norpain.no/fhir/Questionnaire/norpain-baseline"
FOLLOW_UP = "https://norpain.no/fhir/Questionnaire/norpain-followup-12m"
AGE_BAND = "https://norpain.no/fhir/StructureDefinition/study-age-band"

folder = sys.argv[1]
con = duckdb.connect()
con.execute(
    f"CREATE VIEW patient AS SELECT * FROM read_json('{folder}/Patient-*.ndjson', "
    "format = 'newline_delimited', union_by_name = true)"
)
con.execute(
    f"CREATE VIEW qr AS SELECT * FROM read_json('{folder}/QuestionnaireResponse-*.ndjson', "
    "format = 'newline_delimited', union_by_name = true)"
)
rows = con.execute(
    """
    WITH nrs AS (
      SELECT split_part(q.subject.reference, '/', 2) AS person,
             split_part(q.questionnaire, '|', 1) AS form,
             inner_item.answer[1].valueInteger AS value
      FROM qr q, unnest(q.item) AS g(outer_item), unnest(outer_item.item) AS i(inner_item)
      WHERE inner_item.linkId = 'nrs-gjennomsnitt'
    ),
    band AS (
      SELECT id AS person, e.valueRange.low.value AS low, e.valueRange.high.value AS high
      FROM (SELECT id, unnest(extension) AS e FROM patient)
      WHERE e.url = $age_band
    )
    SELECT p.id AS person,
           p.gender AS sex,
           CASE WHEN b.low IS NULL THEN NULL ELSE b.low::VARCHAR || '-' || b.high::VARCHAR END AS age_band,
           round(avg(n.value) FILTER (WHERE n.form = $baseline), 2) AS pain_baseline,
           round(avg(n.value) FILTER (WHERE n.form = $follow_up), 2) AS pain_12_months
    FROM patient p
    LEFT JOIN band b ON b.person = p.id
    LEFT JOIN nrs n ON n.person = p.id
    GROUP BY ALL
    ORDER BY person
    """,
    {"age_band": AGE_BAND, "baseline": BASELINE, "follow_up": FOLLOW_UP},
).fetchall()
print(json.dumps(rows))
