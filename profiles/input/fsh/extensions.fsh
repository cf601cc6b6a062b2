Extension: NorPainReferralDate
Id: referral-date
Title: "Henvisning mottatt"
Description: "Datoen henvisningen til smerteklinikken ble mottatt; starten på ventetiden."
* ^context[0].type = #element
* ^context[0].expression = "EpisodeOfCare"
* value[x] only date
* value[x] 1..1

Extension: NorPainRightToCare
Id: right-to-care
Title: "Rettighetsvurdering"
Description: "Vurderingen av om pasienten har rett til nødvendig helsehjelp: utfall, dato for vurderingen og eventuell frist for start av helsehjelpen."
* ^context[0].type = #element
* ^context[0].expression = "EpisodeOfCare"
* extension contains
    decision 1..1 and
    date 1..1 and
    deadline 0..1
* extension[decision] ^short = "Utfall av vurderingen"
* extension[decision].value[x] only Coding
* extension[decision].value[x] from NorPainRightToCareDecisionVS (required)
* extension[decision].value[x].system 1..1
* extension[decision].value[x].code 1..1
* extension[date] ^short = "Dato for vurderingen"
* extension[date].value[x] only date
* extension[deadline] ^short = "Frist for start av helsehjelpen"
* extension[deadline].value[x] only date

// A stand-in for HL7 Norway's no-basis municipality extension: the no-basis package cannot be loaded
// offline, so the definition is repeated here under no-basis' own canonical URL, which is what data
// from Norwegian EPRs carry.
Extension: NoBasisMunicipalityCode
Id: no-basis-municipalitycode
Title: "Kommunenummer (no-basis)"
Description: "Kommunenummer for adressen, som i HL7 Norways no-basis-profiler."
* ^url = $noBasisMunicipality
* ^context[0].type = #element
* ^context[0].expression = "Address.district"
* value[x] only Coding
* value[x] 1..1
* valueCoding.system 1..1
* valueCoding.system = $kommunenummer (exactly)
* valueCoding.code 1..1
* obeys norpain-kommune-1

Invariant: norpain-kommune-1
Description: "The municipality code (kommunenummer) has four digits."
Expression: "value.ofType(Coding).code.matches('^[0-9]{4}$')"
Severity: #error

Extension: NorPainApprovedVariable
Id: approved-variable
Title: "Godkjent variabel"
Description: "En variabel prosjektet har fått godkjent utlevert: en ressurs-sti (`EpisodeOfCare.period`) eller et skjemaspørsmål (`<Questionnaire-URL>#<linkId>`)."
* ^context[0].type = #element
* ^context[0].expression = "ResearchStudy"
* value[x] only string
* value[x] 1..1

Extension: NorPainDatePrecisionExtension
Id: date-precision
Title: "Datopresisjon"
Description: "Hvor grovt datoer utleveres til prosjektet."
* ^context[0].type = #element
* ^context[0].expression = "ResearchStudy"
* value[x] only code
* value[x] 1..1
* value[x] from NorPainDatePrecisionVS (required)

Extension: NorPainAgeBand
Id: age-band
Title: "Aldersgruppering"
Description: "Bredden, i år, på aldersgruppene alder utleveres i. Uten denne utleveres ikke alder."
* ^context[0].type = #element
* ^context[0].expression = "ResearchStudy"
* value[x] only positiveInt
* value[x] 1..1

Extension: NorPainCoveredUnit
Id: covered-unit
Title: "Omfattet enhet"
Description: "En behandlingsenhet (RESH-id) prosjektet omfatter: forskerne ser bare personer med data ved disse enhetene i godkjenningsperioden."
* ^context[0].type = #element
* ^context[0].expression = "ResearchStudy"
* value[x] only Identifier
* value[x] 1..1
* valueIdentifier.system 1..1
* valueIdentifier.system = $RESH (exactly)
* valueIdentifier.value 1..1
