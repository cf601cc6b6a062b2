package no.norpain.validator;

import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.context.support.DefaultProfileValidationSupport;
import ca.uhn.fhir.parser.DataFormatException;
import ca.uhn.fhir.validation.FhirValidator;
import ca.uhn.fhir.validation.ValidationOptions;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.hl7.fhir.common.hapi.validation.support.CommonCodeSystemsTerminologyService;
import org.hl7.fhir.common.hapi.validation.support.InMemoryTerminologyServerValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.PrePopulatedValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.SnapshotGeneratingValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.ValidationSupportChain;
import org.hl7.fhir.common.hapi.validation.validator.FhirInstanceValidator;
import org.hl7.fhir.instance.model.api.IBaseResource;
import org.hl7.fhir.r4.model.Questionnaire;
import org.hl7.fhir.r4.model.StructureDefinition;

/**
 * The project's conformance resources as the validator sees them: StructureDefinitions, ValueSets and
 * CodeSystems, the Questionnaires, and the profile each resource type is held to (our one profile of that
 * type), so that a stored resource is checked against it whether or not it names it in meta.profile.
 */
final class Definitions {
  private final FhirContext context;
  private final PrePopulatedValidationSupport ours;
  private final QuestionnaireSupport questionnaires;
  private final Map<String, String> profileByType = new HashMap<>();

  private Definitions(FhirContext context) {
    this.context = context;
    this.ours = new PrePopulatedValidationSupport(context);
    this.questionnaires = new QuestionnaireSupport(context);
  }

  /** Reads the given files; those that are no resource or no definition are left out. */
  static Definitions read(FhirContext context, List<Path> files) throws IOException {
    Definitions definitions = new Definitions(context);
    for (Path file : files) {
      definitions.add(file);
    }
    return definitions;
  }

  private void add(Path file) throws IOException {
    IBaseResource resource;
    try {
      resource = context.newJsonParser().parseResource(Files.readString(file, StandardCharsets.UTF_8));
    } catch (DataFormatException e) {
      return; // not a resource (e.g. SUSHI's index files)
    }
    switch (resource.fhirType()) {
      case "StructureDefinition" -> {
        StructureDefinition sd = (StructureDefinition) resource;
        ours.addResource(sd);
        if (sd.getDerivation() == StructureDefinition.TypeDerivationRule.CONSTRAINT
            && sd.getKind() == StructureDefinition.StructureDefinitionKind.RESOURCE) {
          String previous = profileByType.put(sd.getType(), sd.getUrl());
          if (previous != null) {
            throw new IllegalStateException("two profiles of " + sd.getType() + ": " + previous + ", " + sd.getUrl());
          }
        }
      }
      case "ValueSet", "CodeSystem" -> ours.addResource(resource);
      case "Questionnaire" -> questionnaires.add((Questionnaire) resource);
      default -> {
        // examples and other instances are inputs, not definitions
      }
    }
  }

  /**
   * The validator: the R4 base definitions, ours, the Questionnaires, terminology held in memory (no
   * terminology server) and snapshots generated for profiles that lack one.
   */
  FhirValidator newValidator() {
    ValidationSupportChain chain = new ValidationSupportChain(
        new DefaultProfileValidationSupport(context),
        ours,
        questionnaires,
        new CommonCodeSystemsTerminologyService(context),
        new InMemoryTerminologyServerValidationSupport(context),
        new SnapshotGeneratingValidationSupport(context));
    FhirValidator validator = context.newValidator();
    validator.registerValidatorModule(new FhirInstanceValidator(chain));
    return validator;
  }

  /** Validation against our profile of the resource's type, if we have one; the base definition always. */
  ValidationOptions optionsFor(String resourceType) {
    ValidationOptions options = new ValidationOptions();
    String profile = profileByType.get(resourceType);
    if (profile != null) {
      options.addProfile(profile);
    }
    return options;
  }
}
