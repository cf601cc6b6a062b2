Profile: NorPainQuestionnaireResponse
Parent: QuestionnaireResponse
Id: norpain-questionnaireresponse
Title: "NorPain – skjemasvar"
Description: """
Et svar på et av NorPains skjema (pasientens før første konsultasjon og etter 12 måneder, og klinikerens
registrering). Svaret må vise til skjemaet (kanonisk URL, helst med versjon) og til pasienten; innholdet
kontrolleres mot skjemaet av serverens skjemavalidator.
"""
* questionnaire 1..1 MS
* questionnaire ^short = "Skjemaets kanoniske URL, med |versjon når avsenderen kjenner den"
* status MS
* status from NorPainQuestionnaireResponseStatusVS (required)
* subject 1..1 MS
* subject only Reference(Patient)
* authored MS
* obeys norpain-qr-1

// The validator in @medplum/core does not check bindings, so the allowed statuses are also an invariant.
Invariant: norpain-qr-1
Description: "The registry accepts QuestionnaireResponse.status completed, amended or in-progress only."
Expression: "status = 'completed' or status = 'amended' or status = 'in-progress'"
Severity: #error
