Profile: NorPainResearchStudyApproval
Parent: ResearchStudy
Id: norpain-researchstudy-approval
Title: "NorPain – godkjent forskningsprosjekt"
Description: """
Et forskningsprosjekt registeret har godkjent utlevering til: saksnummeret, godkjenningsperioden, de
godkjente variablene og hvor grovt datoer og alder utleveres. Forskere knyttet til prosjektet ser bare
prosjektets visning (DESIGN §3.5), bare av de omfattede enhetene, og bare mens studien er `active`
og innenfor perioden.
"""
* extension contains
    NorPainApprovedVariable named approvedVariable 1..* MS and
    NorPainDatePrecisionExtension named datePrecision 1..1 MS and
    NorPainAgeBand named ageBand 0..1 MS and
    NorPainCoveredUnit named coveredUnit 1..* MS
// Restating the slices' fixed url unfolds it into the snapshot, where @medplum/core's validator needs it.
* extension[approvedVariable].url = "https://norpain.no/fhir/StructureDefinition/approved-variable" (exactly)
* extension[datePrecision].url = "https://norpain.no/fhir/StructureDefinition/date-precision" (exactly)
* extension[ageBand].url = "https://norpain.no/fhir/StructureDefinition/age-band" (exactly)
* extension[coveredUnit].url = "https://norpain.no/fhir/StructureDefinition/covered-unit" (exactly)
* identifier 1..* MS
* identifier ^short = "Registerets saksnummer for utleveringen"
* identifier.system 1..1
* identifier.value 1..1
* title 1..1 MS
* status MS
* period 1..1 MS
* period.start 1..1
* period.end 1..1
* period ^short = "Perioden utleveringen er godkjent for"
* obeys norpain-rs-1
* extension obeys norpain-rs-2 and norpain-rs-3 and norpain-rs-4

Invariant: norpain-rs-1
Description: "The approval period cannot end before it starts."
Expression: "period.end.toString() >= period.start.toString()"
Severity: #error

Invariant: norpain-rs-2
Description: "Each approved variable is a non-empty valueString."
Expression: "url = 'https://norpain.no/fhir/StructureDefinition/approved-variable' implies value.ofType(string).exists()"
Severity: #error

Invariant: norpain-rs-3
Description: "The date precision is year, month or day (valueCode)."
Expression: "url = 'https://norpain.no/fhir/StructureDefinition/date-precision' implies (value.ofType(code) = 'year' or value.ofType(code) = 'month' or value.ofType(code) = 'day')"
Severity: #error

Invariant: norpain-rs-4
Description: "The age band is a whole number of years (valuePositiveInt)."
Expression: "url = 'https://norpain.no/fhir/StructureDefinition/age-band' implies value.ofType(positiveInt).exists()"
Severity: #error
