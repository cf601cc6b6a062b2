CodeSystem: NorPainRightToCareDecision
Id: right-to-care-decision
Title: "NorPain – vurdering av rett til nødvendig helsehjelp"
Description: "Utfallet av rettighetsvurderingen etter prioriteringsveilederen for smerte (pasient- og brukerrettighetsloven § 2-1 b)."
* ^caseSensitive = true
* ^content = #complete
* #granted "Rett til nødvendig helsehjelp" "Pasienten er gitt rett til nødvendig helsehjelp i spesialisthelsetjenesten."
* #not-granted "Ikke rett til nødvendig helsehjelp" "Pasienten er vurdert til ikke å ha rett til nødvendig helsehjelp."

ValueSet: NorPainRightToCareDecisionVS
Id: right-to-care-decision
Title: "NorPain – vurdering av rett til nødvendig helsehjelp"
Description: "Alle kodene i NorPains kodeverk for rettighetsvurdering."
* include codes from system NorPainRightToCareDecision

CodeSystem: NorPainConsentPolicy
Id: consent-policy
Title: "NorPain – rettslig grunnlag for samtykke og reservasjon"
Description: "Regelverket en NorPain-Consent viser til."
* ^caseSensitive = true
* ^content = #complete
* #reservasjonsrett "Reservasjonsrett" "Den registrertes rett til å reservere seg mot registrering i et medisinsk kvalitetsregister (forskrift om medisinske kvalitetsregistre). Reservasjon fører til sletting av opplysningene."

ValueSet: NorPainReservationScopeVS
Id: reservation-scope
Title: "NorPain – omfang av en reservasjon"
Description: "En reservasjon gjelder personvern (registrering i registeret) eller forskning."
* $consentscope#patient-privacy
* $consentscope#research

ValueSet: NorPainReservationStatusVS
Id: reservation-status
Title: "NorPain – status for en reservasjon"
Description: "active = reservert; inactive = reservasjonen er trukket tilbake."
* http://hl7.org/fhir/consent-state-codes#active
* http://hl7.org/fhir/consent-state-codes#inactive

ValueSet: NorPainQuestionnaireResponseStatusVS
Id: questionnaire-response-status
Title: "NorPain – status for et skjemasvar"
Description: "Statusene registeret tar imot: besvart, endret og påbegynt."
* http://hl7.org/fhir/questionnaire-answers-status#completed
* http://hl7.org/fhir/questionnaire-answers-status#amended
* http://hl7.org/fhir/questionnaire-answers-status#in-progress

CodeSystem: NorPainDatePrecision
Id: date-precision
Title: "NorPain – presisjon for datoer i forskningsuttrekk"
Description: "Hvor grovt datoer utleveres i et godkjent forskningsprosjekt."
* ^caseSensitive = true
* ^content = #complete
* #year "År" "Bare årstall (YYYY)."
* #month "Måned" "År og måned (YYYY-MM)."
* #day "Dag" "Full dato (YYYY-MM-DD)."

ValueSet: NorPainDatePrecisionVS
Id: date-precision
Title: "NorPain – presisjon for datoer i forskningsuttrekk"
Description: "Alle kodene i NorPains kodeverk for datopresisjon."
* include codes from system NorPainDatePrecision
