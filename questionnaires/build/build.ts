/**
 * Generates questionnaires/*.json, the NorPain Questionnaires, from the building blocks in this folder.
 * Run `npx tsx questionnaires/build/build.ts` after editing; test/validation/norpain.test.ts fails
 * when the committed JSON and this source disagree. A changed Questionnaire needs a new `version`.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Questionnaire, QuestionnaireItem, ValueSet } from '@medplum/fhirtypes';
import {
  bpiInterference,
  cfq,
  demographics,
  eq5d,
  hscl25,
  isi,
  painHistory,
  pain,
  pcs,
  pgic,
  work,
} from './instruments';
import {
  BASE,
  bool,
  choice,
  cs,
  date,
  group,
  integer,
  PLACEHOLDER,
  score,
  variable,
  when,
  type Option,
} from './items';

const VERSION = '1.0.0';
const DATE = '2025-01-15';
const PUBLISHER = 'Nasjonalt smerteklinikkregister (NorPain), St. Olavs hospital HF';
export const ICD10_NO = 'urn:oid:2.16.578.1.12.4.1.1.7110';
export const ICPC2_NO = 'urn:oid:2.16.578.1.12.4.1.1.7170';

const LICENCE_NOTE =
  'Spørsmål og svaralternativer skrevet av registeret kan fritt brukes. Lisensierte instrumenter (Brief Pain Inventory © MD Anderson; ' +
  'Insomnia Severity Index © C.M. Morin/Mapi Research Trust; Chalder Fatigue Questionnaire © T. Chalder; EQ-5D-5L © EuroQol Research Foundation; ' +
  'Pain Catastrophizing Scale © M.J.L. Sullivan) og HSCL-25 (oversettelsesrettigheter ikke avklart) er gjengitt med sin virkelige struktur, ' +
  `svarskalaer og skåringsregler, men med plassholdertekst merket «${PLACEHOLDER}». Lisensiert ordlyd lastes fra en egen, ikke versjonert tekstfil ved utrulling.`;

function questionnaire(
  id: string,
  name: string,
  title: string,
  description: string,
  item: QuestionnaireItem[],
  extra: Partial<Questionnaire> = {},
): Questionnaire {
  return {
    resourceType: 'Questionnaire',
    id: `${id}-${VERSION}`,
    url: `${BASE}/Questionnaire/${id}`,
    version: VERSION,
    name,
    title,
    status: 'active',
    subjectType: ['Patient'],
    date: DATE,
    publisher: PUBLISHER,
    language: 'nb',
    description,
    ...extra,
    item,
  };
}

export function baseline(): Questionnaire {
  return questionnaire(
    'norpain-baseline',
    'NorPainBaseline',
    'NorPain – spørreskjema før første konsultasjon',
    'Pasientens spørreskjema før første poliklinikkonsultasjon ved tverrfaglig smerteklinikk (T0): bakgrunn, utdanning, arbeid og trygd, ' +
      'smertevarighet og debut, smertested, smerteintensitet (NRS 0–10), smertens påvirkning (BPI-SF), psykiske plager (HSCL-25 med HSCL-10), ' +
      'søvn (ISI), utmattelse (CFQ), helserelatert livskvalitet (EQ-5D-5L) og smertekatastrofering (PCS). Skårer beregnes av tjeneren.',
    [demographics(), work(), painHistory(), pain(), bpiInterference(), hscl25(), isi(), cfq(), eq5d(), pcs()],
    { copyright: LICENCE_NOTE },
  );
}

export function followup(): Questionnaire {
  return questionnaire(
    'norpain-followup-12m',
    'NorPainFollowup12m',
    'NorPain – oppfølging 12 måneder etter avsluttet behandling',
    'Pasientens spørreskjema 12 måneder etter at forløpet ved smerteklinikken ble avsluttet (T12): global endring (PGIC) og tilfredshet, ' +
      'arbeid og trygd, smertested og smerteintensitet, smertens påvirkning (BPI-SF), HSCL-25/HSCL-10, ISI, CFQ, EQ-5D-5L og PCS, ' +
      'med samme skåringsregler som ved T0. Skårer beregnes av tjeneren.',
    [pgic(), work(), pain(), bpiInterference(), hscl25(), isi(), cfq(), eq5d(), pcs()],
    { copyright: LICENCE_NOTE },
  );
}

const diagnosisValueSet: ValueSet = {
  resourceType: 'ValueSet',
  id: 'icd10',
  status: 'active',
  description: 'Hele ICD-10 (norsk utgave, Volven 7110)',
  compose: { include: [{ system: ICD10_NO }] },
};
const referralDiagnosisValueSet: ValueSet = {
  resourceType: 'ValueSet',
  id: 'henvisningsdiagnose',
  status: 'active',
  description: 'ICPC-2 (fastlege) eller ICD-10 (spesialisthelsetjenesten)',
  compose: { include: [{ system: ICPC2_NO }, { system: ICD10_NO }] },
};

export function clinician(): Questionnaire {
  const granted = when('rett-innvilget', { answerBoolean: true });
  const ended = when('forlop-avsluttet', { answerBoolean: true });
  return questionnaire(
    'norpain-clinician-episode',
    'NorPainClinicianEpisode',
    'NorPain – klinikerregistrering for forløpet',
    'Registreres av smerteklinikken gjennom forløpet: henvisning, rettighetsvurdering, diagnoser (ICD-10), smertemekanisme, ' +
      'tverrfaglig utredning, behandlingstilbud, konsultasjoner og avslutning av forløpet. Avslutningsdatoen setter tidspunktet for 12-måneders oppfølging.',
    [
      group('henvisning', 'Henvisning', [
        date('henvisning-mottatt', 'Dato henvisningen ble mottatt', { required: true }),
        choice(
          'henviser',
          'Hvem henviste pasienten?',
          cs('henviser'),
          [
            ['fastlege', 'Fastlege'],
            ['sykehuslege', 'Lege i sykehus'],
            ['avtalespesialist', 'Avtalespesialist'],
            ['annet', 'Annen henviser'],
          ],
          { required: true },
        ),
        {
          linkId: 'henvisningsdiagnose',
          text: 'Henvisningsdiagnose (ICPC-2 eller ICD-10)',
          type: 'choice',
          answerValueSet: '#henvisningsdiagnose',
        },
      ]),
      group('rettighet', 'Rettighetsvurdering', [
        date('rett-vurdert', 'Dato for vurdering av rett til nødvendig helsehjelp', { required: true }),
        bool('rett-innvilget', 'Ble pasienten gitt rett til nødvendig helsehjelp?', { required: true }),
        date('rett-frist', 'Frist for start av helsehjelpen', { ...granted, required: true }),
        choice(
          'prioriteringstilstand',
          'Tilstand i prioriteringsveilederen for smertetilstander',
          cs('prioriteringstilstand'),
          [1, 2, 3, 4, 5].map((n): Option => [
            `tilstand-${n}`,
            `Tilstand ${n} i prioriteringsveilederen (ordlyd fra veilederen)`,
          ]),
          granted,
        ),
      ]),
      group('forlop-start', 'Start av forløpet', [
        date(
          'forste-konsultasjon',
          'Dato for første konsultasjon',
          when('rett-innvilget', { answerBoolean: true }),
        ),
      ]),
      group('diagnoser', 'Diagnoser', [
        {
          linkId: 'hoveddiagnose',
          text: 'Hoveddiagnose (ICD-10)',
          type: 'choice',
          answerValueSet: '#icd10',
          required: true,
        },
        {
          linkId: 'bidiagnoser',
          text: 'Bidiagnoser (ICD-10)',
          type: 'choice',
          answerValueSet: '#icd10',
          repeats: true,
        },
        choice('icd11-smertetype', 'Kronisk smerte etter ICD-11', cs('icd11-smertetype'), [
          ['primaer', 'Kronisk primær smerte'],
          ['sekundaer', 'Kronisk sekundær smerte'],
          ['uavklart', 'Uavklart'],
        ]),
        choice(
          'smertemekanisme',
          'Dominerende smertemekanisme',
          cs('smertemekanisme'),
          [
            ['nociseptiv', 'Nociseptiv'],
            ['nevropatisk', 'Nevropatisk'],
            ['nociplastisk', 'Nociplastisk'],
            ['blandet', 'Blandet'],
            ['uavklart', 'Uavklart'],
          ],
          { required: true },
        ),
      ]),
      group('utredning', 'Utredning', [
        bool('tverrfaglig', 'Ble pasienten utredet tverrfaglig?', { required: true }),
        choice(
          'profesjoner',
          'Hvilke profesjoner deltok i utredningen?',
          cs('profesjon'),
          [
            ['lege', 'Lege'],
            ['psykolog', 'Psykolog'],
            ['fysioterapeut', 'Fysioterapeut'],
            ['sykepleier', 'Sykepleier'],
            ['sosionom', 'Sosionom'],
            ['annet', 'Annen profesjon'],
          ],
          { repeats: true, ...when('tverrfaglig', { answerBoolean: true }) },
        ),
      ]),
      group('behandling', 'Behandlingstilbud', [
        choice(
          'behandlingstilbud',
          'Hvilken behandling ble tilbudt? (Flere valg)',
          cs('behandlingstilbud'),
          [
            ['individuell-lege', 'Individuell oppfølging hos lege'],
            ['individuell-psykolog', 'Individuell oppfølging hos psykolog'],
            ['individuell-fysioterapeut', 'Individuell oppfølging hos fysioterapeut'],
            ['individuell-sykepleier', 'Individuell oppfølging hos sykepleier'],
            ['gruppe', 'Gruppebehandling eller pasientopplæring (f.eks. ACT, mestring, oppmerksomt nærvær)'],
            ['medikamentendring', 'Endring av medikamentell behandling'],
            ['opioidnedtrapping', 'Nedtrapping av opioider'],
            ['intervensjon', 'Intervensjonsbehandling (f.eks. blokade)'],
            ['samarbeid', 'Samarbeid med fastlege eller NAV'],
            ['ingen', 'Ingen behandling utover utredning'],
          ],
          { repeats: true, required: true },
        ),
        integer('konsultasjoner-lege', 'Antall konsultasjoner hos lege', 0, 200),
        integer('konsultasjoner-psykolog', 'Antall konsultasjoner hos psykolog', 0, 200),
        integer('konsultasjoner-fysioterapeut', 'Antall konsultasjoner hos fysioterapeut', 0, 200),
        integer('konsultasjoner-annen', 'Antall konsultasjoner hos andre profesjoner', 0, 200),
        integer('konsultasjoner-video-telefon', 'Herav antall video- eller telefonkonsultasjoner', 0, 200),
      ]),
      group(
        'avslutning',
        'Avslutning av forløpet',
        [
          bool('forlop-avsluttet', 'Er forløpet ved smerteklinikken avsluttet?', { required: true }),
          date('sluttdato', 'Dato forløpet ble avsluttet', { ...ended, required: true }),
          choice(
            'sluttarsak',
            'Årsak til avslutning',
            cs('sluttarsak'),
            [
              ['fullfort', 'Fullført utredning/behandling'],
              ['avbrutt', 'Avbrutt av pasienten'],
              ['henvist-videre', 'Henvist videre'],
              ['dod', 'Død'],
              ['annet', 'Annet'],
            ],
            { ...ended, required: true },
          ),
          score(
            'oppfolging-t12',
            'Dato for 12-måneders oppfølging (beregnet)',
            'date',
            'iif(%sluttdato.exists(), %sluttdato + 12 months)',
            'Sluttdato + 12 måneder',
          ),
        ],
        { extension: [variable('sluttdato', "item.where(linkId = 'sluttdato').answer.value")] },
      ),
    ],
    { subjectType: ['Patient'], contained: [diagnosisValueSet, referralDiagnosisValueSet] },
  );
}

export const NORPAIN_QUESTIONNAIRES = {
  'norpain-baseline': baseline,
  'norpain-clinician-episode': clinician,
  'norpain-followup-12m': followup,
};

export function render(q: Questionnaire): string {
  return JSON.stringify(q, null, 2) + '\n';
}

if (require.main === module) {
  const dir = join(__dirname, '..');
  for (const [name, make] of Object.entries(NORPAIN_QUESTIONNAIRES)) {
    writeFileSync(join(dir, `${name}.json`), render(make()));
    console.log(`wrote questionnaires/${name}.json`);
  }
}
