Profile: NorPainReservation
Parent: Consent
Id: norpain-reservation
Title: "NorPain – reservasjon mot registrering"
Description: """
Personens reservasjon mot NorPain (status active) eller tilbaketrekking av den (status inactive).
Personen identifiseres med fødselsnummer, D-nummer eller felles hjelpenummer, aldri med en referanse,
fordi registeret kanskje aldri har sett personen. Reservasjonsendepunktet tar imot ressursen, lagrer bare
en nøkkelhash av identifikatoren og sletter alt registeret har om personen; ressursen selv lagres ikke i
det kliniske lageret.
"""
* text 0..0
* status MS
* status from NorPainReservationStatusVS (required)
* scope MS
* scope from NorPainReservationScopeVS (required)
* category 1..* MS
* category ^short = "LOINC 59284-0 (Patient Consent), som i HL7 Norways og IHE PCFs samtykkeprofiler"
* patient 1..1 MS
* patient ^short = "Personen, ved nasjonal identifikator"
* patient only Reference(Patient)
* patient.reference 0..0
* patient.display 0..0
* patient.identifier 1..1
* patient.identifier.system 1..1
* patient.identifier.value 1..1
* patient.identifier obeys norpain-res-3
* dateTime 1..1 MS
* policyRule 1..1 MS
* policyRule = NorPainConsentPolicy#reservasjonsrett
* provision 1..1 MS
* provision.type 1..1
* provision.type = #deny
* obeys norpain-res-1 and norpain-res-2 and norpain-res-4 and norpain-res-5

// Bindings are not checked by the validator in @medplum/core, so the codes are invariants too.
Invariant: norpain-res-1
Description: "A reservation has status active (reserved) or inactive (withdrawn)."
Expression: "status = 'active' or status = 'inactive'"
Severity: #error

Invariant: norpain-res-2
Description: "A reservation has scope patient-privacy or research (http://terminology.hl7.org/CodeSystem/consentscope)."
Expression: "scope.coding.where(system = 'http://terminology.hl7.org/CodeSystem/consentscope' and (code = 'patient-privacy' or code = 'research')).exists()"
Severity: #error

Invariant: norpain-res-3
Description: "The person is identified by a national identity number (FNR, D-number or felles hjelpenummer: 11 digits, HL7 Norway OID system)."
Expression: "(system = 'urn:oid:2.16.578.1.12.4.1.4.1' or system = 'urn:oid:2.16.578.1.12.4.1.4.2' or system = 'urn:oid:2.16.578.1.12.4.1.4.3') and value.matches('^[0-9]{11}$')"
Severity: #error

// A pattern on the repeating category is not applied by the validator in @medplum/core (it compares the
// whole list with one value), so the required code is an invariant.
Invariant: norpain-res-4
Description: "A reservation has category LOINC 59284-0 (Patient Consent)."
Expression: "category.coding.where(system = 'http://loinc.org' and code = '59284-0').exists()"
Severity: #error

// The validator in @medplum/core checks elements inside a backbone element (provision) against the base
// definition only, so the deny is an invariant on the resource too.
Invariant: norpain-res-5
Description: "A reservation is an opt-out: provision.type is deny."
Expression: "provision.type = 'deny'"
Severity: #error
