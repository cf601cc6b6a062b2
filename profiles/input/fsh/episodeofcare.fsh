Profile: NorPainEpisodeOfCare
Parent: EpisodeOfCare
Id: norpain-episodeofcare
Title: "NorPain – behandlingsforløp ved smerteklinikk"
Description: """
Et forløp ved en tverrfaglig smerteklinikk: enheten (RESH-id), når henvisningen kom, rettighetsvurderingen
(utfall, dato, frist), og start (første konsultasjon) og slutt. Slutt utløser oppfølgingen etter 12 måneder.
"""
* extension contains
    NorPainReferralDate named referralDate 1..1 MS and
    NorPainRightToCare named rightToCare 0..1 MS
// Restating the slice's fixed url unfolds it into the snapshot, where @medplum/core's validator needs it
// to tell the slices apart (it does not look into extension definitions). Not done for rightToCare: the
// validator would mistake its unfolded sub-extension slices for slices of EpisodeOfCare.extension, so
// its cardinality and content are invariants (norpain-eoc-6, norpain-eoc-7).
* extension[referralDate].url = "https://norpain.no/fhir/StructureDefinition/referral-date" (exactly)
* extension obeys norpain-eoc-5 and norpain-eoc-6
* status MS
* patient MS
* patient only Reference(Patient)
* managingOrganization 1..1 MS
* managingOrganization ^short = "Enheten forløpet hører til, ved RESH-id"
* managingOrganization.identifier 1..1
* managingOrganization.identifier.system 1..1
* managingOrganization.identifier.system = $RESH (exactly)
* managingOrganization.identifier.value 1..1
* period MS
* period.start ^short = "Første konsultasjon"
* period.end ^short = "Forløpet avsluttet"
* obeys norpain-eoc-7 and norpain-eoc-1 and norpain-eoc-2 and norpain-eoc-3 and norpain-eoc-4

Invariant: norpain-eoc-1
Description: "An active or finished episode needs period.start (the first consultation)."
Expression: "(status = 'active' or status = 'finished') implies period.start.exists()"
Severity: #error

Invariant: norpain-eoc-2
Description: "A finished episode needs period.end."
Expression: "status = 'finished' implies period.end.exists()"
Severity: #error

Invariant: norpain-eoc-3
Description: "period.start cannot be before the referral date."
Expression: "(period.start.exists() and extension.where(url = 'https://norpain.no/fhir/StructureDefinition/referral-date').count() = 1) implies period.start.toString().substring(0, 10) >= extension.where(url = 'https://norpain.no/fhir/StructureDefinition/referral-date').value.toString()"
Severity: #error

Invariant: norpain-eoc-4
Description: "The right-to-care decision cannot be dated before the referral date."
Expression: "(extension.where(url = 'https://norpain.no/fhir/StructureDefinition/right-to-care').extension.where(url = 'date').count() = 1 and extension.where(url = 'https://norpain.no/fhir/StructureDefinition/referral-date').count() = 1) implies extension.where(url = 'https://norpain.no/fhir/StructureDefinition/right-to-care').extension.where(url = 'date').value.toString() >= extension.where(url = 'https://norpain.no/fhir/StructureDefinition/referral-date').value.toString()"
Severity: #error

// The validator in @medplum/core does not check the content of extensions against their definitions,
// so what the registry relies on is restated here, on the resource. The invariants use
// extension.where(url = ...) because @medplum/core's FHIRPath extension(url) returns the first match only.
Invariant: norpain-eoc-5
Description: "The referral date extension carries a valueDate."
Expression: "url = 'https://norpain.no/fhir/StructureDefinition/referral-date' implies value.ofType(date).exists()"
Severity: #error

Invariant: norpain-eoc-6
Description: "The right-to-care extension has one decision (code granted or not-granted from https://norpain.no/fhir/CodeSystem/right-to-care-decision), one date (valueDate) and at most one deadline (valueDate)."
Expression: "url = 'https://norpain.no/fhir/StructureDefinition/right-to-care' implies (extension.where(url = 'decision').count() = 1 and extension.where(url = 'decision').value.ofType(Coding).where(system = 'https://norpain.no/fhir/CodeSystem/right-to-care-decision' and (code = 'granted' or code = 'not-granted')).exists() and extension.where(url = 'date').count() = 1 and extension.where(url = 'date').value.ofType(date).exists() and extension.where(url = 'deadline').count() <= 1 and extension.where(url = 'deadline').all(value.ofType(date).exists()))"
Severity: #error

Invariant: norpain-eoc-7
Description: "An episode has at most one right-to-care extension."
Expression: "extension.where(url = 'https://norpain.no/fhir/StructureDefinition/right-to-care').count() <= 1"
Severity: #error
