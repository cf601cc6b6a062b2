import type { OperationDefinition } from '@medplum/fhirtypes';
import type { TypeHandlerRow } from '../fhir/classify';
import { errors } from '../fhir/outcomes';
import { GROUPINGS, STATISTICS } from './operation';
import { THRESHOLD } from './suppression';

/** The definition of `$stats`, named by the CapabilityStatement and readable at OperationDefinition/stats. */
export const STATS_OPERATION_DEFINITION: OperationDefinition = {
  resourceType: 'OperationDefinition',
  id: 'stats',
  url: 'https://norpain.no/fhir/OperationDefinition/stats',
  version: '1.0.0',
  name: 'NorPainStatistics',
  title: 'NorPain aggregate statistics with small-cell suppression',
  status: 'active',
  kind: 'operation',
  publisher: 'NorPain',
  description:
    `Counts (persons), means and medians of the registry's numeric Questionnaire items, per year and by unit, sex and age band, ` +
    `over the caller's whole view: registry staff all units, a researcher their study's view (approved variables only). ` +
    `Cells of 1-${THRESHOLD - 1} persons are suppressed, with complementary suppression so that no suppressed cell can be ` +
    `worked out from the totals shown; a mean or median is suppressed with its count. Each year is a table of its own; ` +
    `every answer is a slice of one table over unit × sex × age band, so two calls cannot be differenced.`,
  affectsState: false,
  code: 'stats',
  system: true,
  type: false,
  instance: false,
  parameter: [
    {
      name: 'variable',
      use: 'in',
      min: 0,
      max: '*',
      type: 'string',
      documentation:
        'A numeric item of a registry Questionnaire, <Questionnaire url>#<linkId>. Without one, count counts persons with an episode.',
    },
    {
      name: 'statistic',
      use: 'in',
      min: 0,
      max: '*',
      type: 'code',
      documentation: `${STATISTICS.join(' | ')} (default count: persons).`,
    },
    {
      name: 'groupBy',
      use: 'in',
      min: 0,
      max: '*',
      type: 'code',
      documentation: `${GROUPINGS.join(' | ')}; the year is always a grouping. Cells without a grouping's part are its total.`,
    },
    {
      name: 'from',
      use: 'in',
      min: 0,
      max: '1',
      type: 'integer',
      documentation: 'First year (of referral) shown.',
    },
    { name: 'to', use: 'in', min: 0, max: '1', type: 'integer', documentation: 'Last year shown.' },
    {
      name: 'population',
      use: 'out',
      min: 1,
      max: '1',
      type: 'string',
      documentation: 'registry, or study <id>.',
    },
    {
      name: 'threshold',
      use: 'out',
      min: 1,
      max: '1',
      type: 'integer',
      documentation: 'Smallest number of persons shown.',
    },
    {
      name: 'cell',
      use: 'out',
      min: 0,
      max: '*',
      documentation: 'One figure: where it stands, what it is, and whether it is suppressed.',
      part: [
        { name: 'year', use: 'out', min: 1, max: '1', type: 'integer' },
        {
          name: 'unit',
          use: 'out',
          min: 0,
          max: '1',
          type: 'string',
          documentation: 'RESH id; absent: all units.',
        },
        {
          name: 'sex',
          use: 'out',
          min: 0,
          max: '1',
          type: 'code',
          documentation: 'female | male | other; absent: all.',
        },
        {
          name: 'age-band',
          use: 'out',
          min: 0,
          max: '1',
          type: 'string',
          documentation: 'Age at referral; absent: all.',
        },
        { name: 'variable', use: 'out', min: 0, max: '1', type: 'string' },
        { name: 'statistic', use: 'out', min: 1, max: '1', type: 'code' },
        {
          // A choice of types is written as R4's own operations write it (CodeSystem/$lookup's value):
          // type Element, each allowed type an extension. Without a type, opd-1 makes the definition invalid.
          extension: ['integer', 'decimal'].map((type) => ({
            url: 'http://hl7.org/fhir/StructureDefinition/operationdefinition-allowed-type',
            valueUri: type,
          })),
          name: 'value',
          use: 'out',
          min: 0,
          max: '1',
          type: 'Element',
          documentation:
            'valueInteger (count) or valueDecimal (mean, median); absent when suppressed or empty.',
        },
        { name: 'suppressed', use: 'out', min: 1, max: '1', type: 'boolean' },
      ],
    },
  ],
};

/** Answers reads and searches of OperationDefinition: the one this server defines. */
export const operationDefinitions: TypeHandlerRow = {
  type: 'OperationDefinition',
  handle: async (ctx, { what }) => {
    if (what.kind !== 'read' && what.kind !== 'search') {
      throw errors.methodNotAllowed('OperationDefinitions are read with GET.', ['GET']);
    }
    if (what.kind === 'search') {
      return {
        status: 200,
        body: {
          resourceType: 'Bundle',
          type: 'searchset',
          total: 1,
          link: [{ relation: 'self', url: `${ctx.base}/OperationDefinition` }],
          entry: [
            {
              fullUrl: `${ctx.base}/OperationDefinition/${STATS_OPERATION_DEFINITION.id}`,
              resource: STATS_OPERATION_DEFINITION,
              search: { mode: 'match' },
            },
          ],
        },
        headers: {},
      };
    }
    if (what.id !== STATS_OPERATION_DEFINITION.id) {
      throw errors.notFound(
        'No OperationDefinition with this id; this server defines OperationDefinition/stats.',
      );
    }
    return { status: 200, body: STATS_OPERATION_DEFINITION, headers: {} };
  },
};
