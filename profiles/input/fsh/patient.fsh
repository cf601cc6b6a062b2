Profile: NorPainPatient
Parent: Patient
Id: norpain-patient
Title: "NorPain – pseudonymisert pasient"
Description: """
Pasienten slik registeret lagrer den, etter pseudonymisering: eneste identifikator er registerpseudonymet,
fødselsdato er kun år og måned, adresse er kun kommunenummer. Navn, fødselsnummer, kontaktopplysninger,
bilde og pårørende finnes aldri i registeret (DESIGN §3.1). Profilen gjelder pasienten *etter*
pseudonymiseringssteget; pasienten journalsystemet sender inneholder fødselsnummer og valideres mot
FHIR-basisressursen.
"""
* text 0..0
* text ^short = "Fritekst kan inneholde navn og blir fjernet"
* contained 0..0
* identifier 1..1 MS
* identifier ^short = "Registerpseudonymet (nøkkelversjon-HMAC)"
* identifier.system 1..1
* identifier.system = $pseudonym (exactly)
* identifier.value 1..1
* identifier.type 0..0
* identifier.period 0..0
* identifier.assigner 0..0
* identifier obeys norpain-pat-1
* name 0..0
* telecom 0..0
* photo 0..0
* contact 0..0
* birthDate MS
* birthDate obeys norpain-pat-2
* deceased[x] obeys norpain-pat-3
* address 0..1
* address.text 0..0
* address.line 0..0
* address.city 0..0
* address.postalCode 0..0
* address.period 0..0
* address.district.extension contains NoBasisMunicipalityCode named municipalitycode 0..1 MS
* address obeys norpain-pat-4

Invariant: norpain-pat-1
Description: "The registry pseudonym has the form <key version>-<value>; a national identity number is never stored."
Expression: "value.matches('^[0-9]+-[A-Za-z0-9_=+/-]+$')"
Severity: #error

Invariant: norpain-pat-2
Description: "birthDate is stored as year and month only (YYYY-MM)."
Expression: "toString().matches('^[0-9]{4}-[0-9]{2}$')"
Severity: #error

Invariant: norpain-pat-3
Description: "deceasedDateTime is stored as year and month only (YYYY-MM)."
Expression: "ofType(dateTime).exists() implies ofType(dateTime).toString().matches('^[0-9]{4}-[0-9]{2}$')"
Severity: #error

// The validator in @medplum/core does not check extensions against their definitions, so the
// municipality code rule is restated on the resource.
Invariant: norpain-pat-4
Description: "The municipality code extension on address.district carries a four-digit kommunenummer (system https://register.geonorge.no/subregister/sosi-kodelister/kartverket/kommunenummer-alle)."
Expression: "district.extension.where(url = 'http://hl7.no/fhir/StructureDefinition/no-basis-municipalitycode').all(value.ofType(Coding).where(system = 'https://register.geonorge.no/subregister/sosi-kodelister/kartverket/kommunenummer-alle' and code.matches('^[0-9]{4}$')).exists())"
Severity: #error
