package no.norpain.validator;

import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.context.support.IValidationSupport;
import java.util.HashMap;
import java.util.Map;
import org.hl7.fhir.instance.model.api.IBaseResource;
import org.hl7.fhir.r4.model.Questionnaire;

/**
 * Serves the NorPain Questionnaires to the validator by canonical URL, with or without `|version`. In
 * HAPI 8.8.0 PrePopulatedValidationSupport keeps only StructureDefinitions, ValueSets, CodeSystems and
 * SearchParameters, so without this the validator cannot resolve a QuestionnaireResponse's
 * `questionnaire` and checks none of its answers.
 */
final class QuestionnaireSupport implements IValidationSupport {
  private final FhirContext context;
  private final Map<String, Questionnaire> byCanonical = new HashMap<>();

  QuestionnaireSupport(FhirContext context) {
    this.context = context;
  }

  void add(Questionnaire questionnaire) {
    String url = questionnaire.getUrl();
    if (url == null) {
      throw new IllegalArgumentException("A Questionnaire without a url cannot be resolved: " + questionnaire.getId());
    }
    if (questionnaire.hasVersion()) {
      byCanonical.put(url + "|" + questionnaire.getVersion(), questionnaire);
    }
    // The unversioned canonical names the latest version; the files are read in name order, and each
    // form has one version in the repository, so the last one added is that one.
    byCanonical.put(url, questionnaire);
  }

  @Override
  public <T extends IBaseResource> T fetchResource(Class<T> type, String canonical) {
    if (canonical == null || (type != null && !type.isAssignableFrom(Questionnaire.class))) {
      return null;
    }
    Questionnaire found = byCanonical.get(canonical);
    @SuppressWarnings("unchecked")
    T typed = (T) found;
    return typed;
  }

  @Override
  public FhirContext getFhirContext() {
    return context;
  }

  @Override
  public String getName() {
    return "NorPain Questionnaires";
  }
}
