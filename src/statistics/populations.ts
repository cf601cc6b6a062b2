import type { Principal } from '../auth/principal';
import { errors } from '../fhir/outcomes';
import type { StudyView } from '../research/view';
import type { FhirStore } from '../store/FhirStore';
import { scanResources } from '../store/scan';
import type { Dimension } from './cube';
import { AGE_BANDS, SEXES, UNKNOWN } from './episodes';
import type { Grouping, Population, StatsQuery } from './operation';

/**
 * The two populations `$stats` aggregates over, each the caller's whole view: registry staff all units'
 * pseudonymised data in the store; a researcher their study's view (src/research/view.ts), where only
 * approved variables may be aggregated and grouped by.
 */

/** Registry staff: every episode at every participating unit. */
function staffPopulation(store: FhirStore, units: readonly string[]): Population {
  return {
    label: 'registry',
    dimensions: [
      { name: 'unit', values: [...units, UNKNOWN] },
      { name: 'sex', values: SEXES },
      { name: 'age-band', values: [...AGE_BANDS, UNKNOWN] },
    ],
    stream: (type) => scanResources(store, { resourceType: type }),
    check: () => undefined,
  };
}

/** What a grouping needs the study to have approved. */
const GROUPING_NEEDS: Record<Grouping, string> = {
  unit: 'EpisodeOfCare.managingOrganization',
  sex: 'Patient.gender',
  'age-band': 'an age band',
};

/** A researcher: the study's view, its covered units, and the age bands of its approval. */
function studyPopulation(view: StudyView): Population {
  const study = view.study;
  const approvedElement = (type: 'Patient' | 'EpisodeOfCare', path: string) =>
    (study.elements.get(type) ?? []).some((p) => p === path || path.startsWith(`${p}.`));
  const approved: Record<Grouping, boolean> = {
    unit: approvedElement('EpisodeOfCare', 'managingOrganization'),
    sex: approvedElement('Patient', 'gender'),
    'age-band': study.ageBand !== undefined,
  };
  const width = study.ageBand;
  const bands =
    width === undefined
      ? []
      : Array.from({ length: Math.ceil(120 / width) }, (_, i) => `${i * width}-${i * width + width - 1}`);
  const dimensions: Dimension[] = [
    { name: 'unit', values: approved.unit ? [...study.units, UNKNOWN] : [UNKNOWN] },
    { name: 'sex', values: SEXES },
    { name: 'age-band', values: [...bands, UNKNOWN] },
  ];
  return {
    label: `study ${study.id}`,
    dimensions,
    stream: (type) => view.stream(type),
    check: (query: StatsQuery) => {
      for (const variable of query.variables) {
        const [url, linkId] = variable.split('#');
        if (!study.items.get(url)?.has(linkId)) {
          throw errors.forbidden(
            `${variable} is not among the variables approved for study ${study.id}; a researcher may aggregate approved variables only.`,
          );
        }
      }
      for (const grouping of query.groupBy) {
        if (!approved[grouping]) {
          throw errors.forbidden(
            `Grouping by ${grouping} needs ${GROUPING_NEEDS[grouping]} approved for study ${study.id}; it is not.`,
          );
        }
      }
    },
  };
}

/** The population of the caller: staff or a researcher's study (403 from the study view otherwise). */
export async function populationOf(
  principal: Principal,
  deps: {
    store: FhirStore;
    units: () => readonly string[];
    openView: (principal: Principal) => Promise<StudyView>;
  },
): Promise<Population> {
  return principal.role === 'researcher'
    ? studyPopulation(await deps.openView(principal))
    : staffPopulation(deps.store, deps.units());
}
