// Systems and canonicals used by the NorPain profiles.
Alias: $consentscope = http://terminology.hl7.org/CodeSystem/consentscope
Alias: $consentaction = http://terminology.hl7.org/CodeSystem/consentaction
Alias: $LOINC = http://loinc.org
Alias: $RESH = urn:oid:2.16.578.1.12.4.1.4.102
Alias: $FNR = urn:oid:2.16.578.1.12.4.1.4.1
Alias: $DNR = urn:oid:2.16.578.1.12.4.1.4.2
Alias: $FHN = urn:oid:2.16.578.1.12.4.1.4.3
Alias: $pseudonym = https://norpain.no/fhir/NamingSystem/registry-pseudonym
Alias: $kommunenummer = https://register.geonorge.no/subregister/sosi-kodelister/kartverket/kommunenummer-alle
// HL7 Norway's no-basis package is not reachable offline; its municipality extension is written as a
// plain URL (see extensions.fsh).
Alias: $noBasisMunicipality = http://hl7.no/fhir/StructureDefinition/no-basis-municipalitycode
