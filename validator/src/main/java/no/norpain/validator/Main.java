package no.norpain.validator;

import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.validation.FhirValidator;
import ca.uhn.fhir.validation.ResultSeverityEnum;
import ca.uhn.fhir.validation.SingleValidationMessage;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.hl7.fhir.utilities.http.ManagedWebAccess;

/**
 * Validates FHIR R4 JSON files offline with HAPI FHIR's FhirInstanceValidator against the base R4
 * definitions and the project's own conformance resources, and fails on any error the allow-list does
 * not name.
 *
 * <pre>
 * java -jar norpain-validator.jar --conformance DIR... --allow allowed.json --out summary.json \
 *     [--must-fail DIR] INPUT...
 * </pre>
 *
 * Each INPUT is a JSON file or a folder searched for *.json; every file holding a FHIR resource (a Bundle
 * included: its entries are validated with it) is validated, against the base definition and, where we
 * have a profile of its type, that profile. --conformance folders give the StructureDefinitions,
 * ValueSets, CodeSystems and Questionnaires the validator resolves. The files in --must-fail folders pass
 * only when they have an error outside the allow-list. Prints one line per file and a total; exit status
 * 0 when every file passed, 1 when one did not, 2 when the arguments or the allow-list cannot be read.
 */
public final class Main {
  private static final ObjectMapper JSON = new ObjectMapper();

  private record Allowed(String id, Pattern message, String why) {}

  public static void main(String[] args) throws IOException {
    List<Path> conformance = new ArrayList<>();
    List<Path> inputs = new ArrayList<>();
    List<Path> mustFail = new ArrayList<>();
    Path allowFile = null;
    Path out = null;
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--conformance" -> conformance.add(Path.of(args[++i]));
        case "--allow" -> allowFile = Path.of(args[++i]);
        case "--out" -> out = Path.of(args[++i]);
        case "--must-fail" -> mustFail.add(Path.of(args[++i]));
        default -> inputs.add(Path.of(args[i]));
      }
    }
    if (inputs.isEmpty()) {
      System.err.println(
          "usage: --conformance DIR... [--allow allowed.json] [--out summary.json] [--must-fail DIR] INPUT...");
      System.exit(2);
    }
    // Offline by design: the validator must never fetch a package or a profile, here or on CI.
    ManagedWebAccess.setAccessPolicy(ManagedWebAccess.WebAccessPolicy.PROHIBITED);

    List<Allowed> allowed = allowFile == null ? List.of() : readAllowList(allowFile);
    FhirContext context = FhirContext.forR4Cached();
    Definitions definitions = Definitions.read(context, jsonFiles(conformance));
    FhirValidator validator = definitions.newValidator();
    List<Path> expectedToFail = jsonFiles(mustFail);

    ArrayNode files = JSON.createArrayNode();
    int failedFiles = 0;
    int errors = 0;
    int allowedErrors = 0;
    int warnings = 0;
    int[] allowUses = new int[allowed.size()];
    List<Path> all = new ArrayList<>(jsonFiles(inputs));
    all.addAll(expectedToFail);
    for (Path file : all) {
      String text = Files.readString(file, StandardCharsets.UTF_8);
      if (!holdsResource(text)) {
        continue;
      }
      // A must-fail file shows the validator still catches what it should (our Questionnaires and profiles
      // resolved, the base rules applied): it passes only when it has an error the allow-list does not name.
      boolean mustFailFile = expectedToFail.contains(file);
      ObjectNode entry = files.addObject();
      entry.put("file", file.toString());
      ArrayNode issues = entry.putArray("issues");
      int fileErrors = 0;
      List<SingleValidationMessage> messages;
      try {
        messages = validator.validateWithResult(text, definitions.optionsFor(resourceType(text))).getMessages();
      } catch (RuntimeException e) {
        // Not JSON, or the validator itself failing on it (as HAPI-0650 did): the file fails, the run goes on.
        messages = List.of(notValidated(e));
      }
      for (SingleValidationMessage m : messages) {
        ResultSeverityEnum severity = m.getSeverity();
        boolean isError = severity == ResultSeverityEnum.ERROR || severity == ResultSeverityEnum.FATAL;
        if (severity == ResultSeverityEnum.WARNING) {
          warnings++;
        }
        if (!isError && severity != ResultSeverityEnum.WARNING) {
          continue; // information: not worth a line
        }
        ObjectNode issue = issues.addObject();
        issue.put("severity", severity.getCode());
        issue.put("location", m.getLocationString());
        issue.put("message", m.getMessage());
        if (isError) {
          int by = allowedBy(allowed, m.getMessage());
          if (by >= 0) {
            allowUses[by]++;
            allowedErrors++;
            issue.put("allowedBy", allowed.get(by).id());
          } else {
            fileErrors++;
            if (!mustFailFile) {
              errors++;
            }
            System.out.printf(
                "  %s%s %s: %s%n",
                mustFailFile ? "expected " : "",
                severity.getCode(),
                m.getLocationString(),
                m.getMessage());
          }
        }
      }
      boolean passed = mustFailFile ? fileErrors > 0 : fileErrors == 0;
      entry.put("passed", passed);
      entry.put("mustFail", mustFailFile);
      if (!passed) {
        failedFiles++;
      }
      System.out.printf(
          "%s %s%s%n", passed ? "PASS" : "FAIL", file, mustFailFile ? (passed ? " (fails, as it must)" : " (must fail)") : "");
    }

    ObjectNode summary = JSON.createObjectNode();
    summary.put("files", files.size());
    summary.put("failedFiles", failedFiles);
    summary.put("errors", errors);
    summary.put("allowedErrors", allowedErrors);
    summary.put("warnings", warnings);
    ObjectNode uses = summary.putObject("allowListUses");
    for (int i = 0; i < allowed.size(); i++) {
      uses.put(allowed.get(i).id(), allowUses[i]);
    }
    summary.set("results", files);
    if (out != null) {
      Files.createDirectories(out.toAbsolutePath().getParent());
      JSON.writerWithDefaultPrettyPrinter().writeValue(out.toFile(), summary);
    }
    System.out.printf(
        "validator: %d files, %d failed; %d errors (%d more allowed), %d warnings%n",
        files.size(), failedFiles, errors, allowedErrors, warnings);
    System.exit(failedFiles == 0 ? 0 : 1);
  }

  private static String resourceType(String text) {
    try {
      return JSON.readTree(text).path("resourceType").asText();
    } catch (JsonProcessingException e) {
      return "";
    }
  }

  /** Whether a file is a FHIR resource; a file that is not JSON is validated, so that it fails. */
  private static boolean holdsResource(String text) {
    try {
      return JSON.readTree(text).has("resourceType");
    } catch (JsonProcessingException e) {
      return true;
    }
  }

  private static SingleValidationMessage notValidated(RuntimeException e) {
    SingleValidationMessage m = new SingleValidationMessage();
    m.setSeverity(ResultSeverityEnum.FATAL);
    m.setLocationString("(file)");
    m.setMessage("could not be validated: " + e);
    return m;
  }

  private static int allowedBy(List<Allowed> allowed, String message) {
    for (int i = 0; i < allowed.size(); i++) {
      if (allowed.get(i).message().matcher(message).find()) {
        return i;
      }
    }
    return -1;
  }

  /** The allow-list: a JSON array of {"id", "message" (a regular expression), "why"}; each needs a why. */
  private static List<Allowed> readAllowList(Path file) throws IOException {
    List<Allowed> list = new ArrayList<>();
    for (JsonNode node : JSON.readTree(file.toFile())) {
      String why = node.path("why").asText("");
      if (why.isBlank()) {
        System.err.println("allow-list entry without a why: " + node);
        System.exit(2);
      }
      list.add(new Allowed(node.path("id").asText(), Pattern.compile(node.path("message").asText()), why));
    }
    return list;
  }

  private static List<Path> jsonFiles(List<Path> roots) throws IOException {
    List<Path> files = new ArrayList<>();
    for (Path root : roots) {
      try (Stream<Path> walk = Files.walk(root)) {
        walk.filter(p -> Files.isRegularFile(p) && p.toString().endsWith(".json")).sorted().forEach(files::add);
      }
    }
    return files;
  }
}
