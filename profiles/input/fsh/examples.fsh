// Synthetic examples, one per profile. The tests validate them against their profiles and derive the
// failing cases from them. The national id is a synthetic Test-Norge number (month + 80).

Instance: norpain-patient-example
InstanceOf: NorPainPatient
Usage: #example
Title: "Pseudonymisert pasient"
* identifier.system = $pseudonym
* identifier.value = "1-q4Yw0S2bqJ9fJ8m0cHh3ZkT1xQ"
* gender = #female
* birthDate = "1981-04"
* address.district = "Trondheim"
* address.district.extension[municipalitycode].valueCoding = $kommunenummer#5001 "Trondheim"

Instance: norpain-episodeofcare-example
InstanceOf: NorPainEpisodeOfCare
Usage: #example
Title: "Avsluttet forløp ved smerteklinikk"
* extension[referralDate].valueDate = "2024-01-15"
* extension[rightToCare].extension[decision].valueCoding = NorPainRightToCareDecision#granted
* extension[rightToCare].extension[date].valueDate = "2024-02-01"
* extension[rightToCare].extension[deadline].valueDate = "2024-07-15"
* status = #finished
* patient = Reference(Patient/norpain-patient-example)
* managingOrganization.identifier.system = $RESH
* managingOrganization.identifier.value = "4201115"
* period.start = "2024-03-04"
* period.end = "2024-09-30"

Instance: norpain-questionnaireresponse-example
InstanceOf: NorPainQuestionnaireResponse
Usage: #example
Title: "Påbegynt skjemasvar"
* questionnaire = "https://norpain.no/fhir/Questionnaire/norpain-baseline|1.0.0"
// Begun, not finished (in-progress): the baseline form's required items may still be missing.
* status = #in-progress
* subject = Reference(Patient/norpain-patient-example)
* authored = "2024-02-20T10:15:00+01:00"
* item[0].linkId = "smerte"
* item[0].item[0].linkId = "nrs-gjennomsnitt"
* item[0].item[0].answer[0].valueInteger = 6

Instance: norpain-reservation-example
InstanceOf: NorPainReservation
Usage: #example
Title: "Reservasjon mot registrering"
* status = #active
* scope = $consentscope#patient-privacy
* category = $LOINC#59284-0
* patient.identifier.system = $FNR
* patient.identifier.value = "10915596784"
* dateTime = "2024-05-02T09:00:00+02:00"
* policyRule = NorPainConsentPolicy#reservasjonsrett
* provision.type = #deny

Instance: norpain-researchstudy-approval-example
InstanceOf: NorPainResearchStudyApproval
Usage: #example
Title: "Godkjent forskningsprosjekt"
* extension[approvedVariable][0].valueString = "EpisodeOfCare.period"
* extension[approvedVariable][1].valueString = "https://norpain.no/fhir/Questionnaire/norpain-baseline#hscl10-gjennomsnitt"
* extension[datePrecision].valueCode = #month
* extension[ageBand].valuePositiveInt = 5
* extension[coveredUnit][0].valueIdentifier.system = $RESH
* extension[coveredUnit][0].valueIdentifier.value = "999001"
* extension[coveredUnit][1].valueIdentifier.system = $RESH
* extension[coveredUnit][1].valueIdentifier.value = "999002"
* identifier.system = "https://norpain.no/fhir/NamingSystem/research-approval"
* identifier.value = "2025-0042"
* title = "Smerteintensitet før og etter behandling ved tverrfaglige smerteklinikker"
* status = #active
* period.start = "2025-01-01"
* period.end = "2027-12-31"
