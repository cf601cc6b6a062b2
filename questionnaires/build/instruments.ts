/**
 * The patient-reported instruments of NorPain (reference: shared/reference/norpain-instruments.md §2).
 * Registry-authored items carry full bokmål wording; licensed instruments (§5) carry their real structure,
 * answer scales and scoring, with placeholder wording marked as such.
 */
import type { QuestionnaireItem } from '@medplum/fhirtypes';
import {
  choice,
  cs,
  display,
  group,
  integer,
  itemScores,
  LOINC,
  mean,
  numbered,
  PLACEHOLDER,
  PLACEHOLDER_MARK,
  proratedSum,
  range,
  score,
  variable,
  when,
  whenYes,
  yesNo,
  type Option,
} from './items';

const YES_NO_UNKNOWN: Option[] = [
  ['ja', 'Ja'],
  ['nei', 'Nei'],
  ['vet-ikke', 'Vet ikke'],
];

export function demographics(): QuestionnaireItem {
  return group(
    'bakgrunn',
    'Om deg',
    [
      choice('sivilstand', 'Hva er din sivilstand?', cs('sivilstand'), [
        ['ugift', 'Ugift'],
        ['gift', 'Gift'],
        ['samboer', 'Samboer'],
        ['partner', 'Registrert partner'],
        ['enke', 'Enke/enkemann'],
        ['skilt', 'Skilt'],
        ['separert', 'Separert'],
      ]),
      yesNo('har-barn', 'Har du barn?'),
      integer('antall-barn', 'Hvor mange barn har du?', 1, 20, whenYes('har-barn')),
      integer('hoyde', 'Hvor høy er du (cm)?', 100, 230, {}, { code: 'cm' }),
      integer('vekt', 'Hvor mye veier du (kg)?', 25, 300, {}, { code: 'kg' }),
      score(
        'kmi',
        'Kroppsmasseindeks (beregnet)',
        'decimal',
        'iif(%hoyde.exists() and %vekt.exists(), (%vekt / (%hoyde / 100).power(2)).round(1))',
        'Vekt (kg) / høyde (m)²; bare når begge er besvart',
        1,
        { system: LOINC, code: '39156-5', display: 'Body mass index (BMI) [Ratio]' },
      ),
      choice(
        'utdanning',
        'Hva er din høyeste fullførte utdanning?',
        cs('utdanning'),
        [
          ['grunnskole', 'Grunnskole'],
          ['videregaende', 'Videregående skole'],
          ['fagbrev', 'Fagbrev eller svennebrev'],
          ['hoyskole-kort', 'Høyskole eller universitet, inntil 4 år'],
          ['hoyskole-lang', 'Høyskole eller universitet, mer enn 4 år'],
          ['ufullfort', 'Påbegynt, men ikke fullført utdanning'],
          ['annet', 'Annet'],
        ],
        { required: true },
      ),
      fysiskAktivitet(),
    ],
    {
      extension: [
        variable('hoyde', "item.where(linkId = 'hoyde').answer.value"),
        variable('vekt', "item.where(linkId = 'vekt').answer.value"),
      ],
    },
  );
}

function fysiskAktivitet(): QuestionnaireItem {
  return choice(
    'fysisk-aktivitet',
    'Hvor ofte er du fysisk aktiv i minst 30 minutter (for eksempel går tur)?',
    cs('aktivitetsfrekvens'),
    [
      ['aldri', 'Aldri'],
      ['sjeldnere', 'Sjeldnere enn én gang i uken'],
      ['ukentlig', 'Én gang i uken'],
      ['2-3', '2–3 ganger i uken'],
      ['nesten-daglig', 'Nesten hver dag'],
    ],
  );
}

/** Work and social security status (asked at baseline and at 12 months). */
export function work(): QuestionnaireItem {
  return group('arbeid', 'Arbeid og trygd', [
    choice(
      'arbeidssituasjon',
      'Hva er din nåværende arbeidssituasjon? (Du kan velge flere)',
      cs('arbeidssituasjon'),
      [
        ['heltid', 'I arbeid, heltid'],
        ['deltid', 'I arbeid, deltid'],
        ['student', 'Student eller skoleelev'],
        ['arbeidsledig', 'Arbeidsledig'],
        ['hjemmearbeidende', 'Hjemmearbeidende'],
        ['alderspensjon', 'Alderspensjonist'],
        ['ytelser', 'Mottar helt eller delvis trygdeytelser'],
        ['annet', 'Annet'],
      ],
      { repeats: true, required: true },
    ),
    integer(
      'stillingsprosent',
      'Hvor stor stillingsprosent har du (prosent av full stilling)?',
      1,
      100,
      {
        enableWhen: [
          {
            question: 'arbeidssituasjon',
            operator: '=',
            answerCoding: { system: cs('arbeidssituasjon'), code: 'heltid' },
          },
          {
            question: 'arbeidssituasjon',
            operator: '=',
            answerCoding: { system: cs('arbeidssituasjon'), code: 'deltid' },
          },
        ],
        enableBehavior: 'any',
      },
      { code: '%' },
    ),
    choice(
      'trygdeytelser',
      'Hvilke ytelser mottar du nå? (Du kan velge flere)',
      cs('trygdeytelse'),
      [
        ['sykepenger', 'Sykepenger (sykmeldt)'],
        ['gradert-sykmelding', 'Gradert sykmelding'],
        ['aap', 'Arbeidsavklaringspenger (AAP)'],
        ['ufoeretrygd', 'Uføretrygd'],
        ['dagpenger', 'Dagpenger'],
        ['sosialhjelp', 'Økonomisk sosialhjelp'],
        ['annet', 'Annen ytelse'],
      ],
      {
        repeats: true,
        ...when('arbeidssituasjon', { answerCoding: { system: cs('arbeidssituasjon'), code: 'ytelser' } }),
      },
    ),
    integer(
      'ufoeregrad',
      'Hvor stor uføregrad har du (prosent)?',
      1,
      100,
      when('trygdeytelser', { answerCoding: { system: cs('trygdeytelse'), code: 'ufoeretrygd' } }),
      { code: '%' },
    ),
    choice('okonomi', 'Hvordan vurderer du din økonomiske situasjon?', cs('okonomi'), [
      ['god', 'God'],
      ['middels', 'Middels'],
      ['darlig', 'Dårlig'],
    ]),
    choice(
      'erstatningssak',
      'Har du en pågående sak om erstatning eller yrkesskade knyttet til smertene?',
      cs('ja-nei-vet-ikke'),
      YES_NO_UNKNOWN,
    ),
    // Asked of everyone, with «already receive it» as an answer, rather than hidden by `trygdeytelser !=
    // ufoeretrygd`: `!=` on a multi-answer question holds when any answer differs (so uføretrygd plus
    // another benefit would still open it), and LHC-Forms showed it even for uføretrygd alone, while the
    // server's HL7 semantics kept it closed and would have refused the answer.
    choice(
      'soknad-ufoeretrygd',
      'Har du søkt, eller planlegger du å søke, uføretrygd?',
      cs('soknad-ufoeretrygd'),
      [...YES_NO_UNKNOWN, ['mottar', 'Jeg mottar allerede uføretrygd']],
    ),
  ]);
}

export function painHistory(): QuestionnaireItem {
  return group('smertevarighet', 'Smertenes varighet og debut', [
    choice(
      'smertedebut',
      'Når begynte smertene dine?',
      cs('varighetsbånd'),
      [
        ['0-3m', '0–3 måneder siden'],
        ['4-6m', '4–6 måneder siden'],
        ['7-12m', '7–12 måneder siden'],
        ['1-2a', '1–2 år siden'],
        ['2-4a', '2–4 år siden'],
        ['4-6a', '4–6 år siden'],
        ['6-10a', '6–10 år siden'],
        ['over-10a', 'Mer enn 10 år siden'],
      ],
      { required: true },
    ),
    integer(
      'smerteaar',
      'Omtrent hvor mange år har du hatt smertene?',
      0,
      90,
      {},
      { code: 'a', display: 'år' },
    ),
    choice('smerteutlosning', 'Hva utløste smertene?', cs('smerteutlosning'), [
      ['ulykke', 'Ulykke eller skade'],
      ['operasjon', 'Operasjon'],
      ['sykdom', 'Sykdom'],
      ['gradvis', 'Kom gradvis, uten kjent årsak'],
      ['annet', 'Annet'],
      ['vet-ikke', 'Vet ikke'],
    ]),
    choice(
      'ulykketype',
      'Hva slags ulykke eller skade var det?',
      cs('ulykketype'),
      [
        ['trafikk', 'Trafikkulykke'],
        ['arbeid', 'Arbeidsulykke'],
        ['fritid', 'Fritids- eller idrettsulykke'],
        ['vold', 'Vold'],
        ['annet', 'Annet'],
      ],
      when('smerteutlosning', { answerCoding: { system: cs('smerteutlosning'), code: 'ulykke' } }),
    ),
  ]);
}

/**
 * The 19 regions of the ACR widespread pain index, listed from head to toe (the order a person scans
 * their body in), and «none», which the reference lists with them: without it a person who has had no
 * pain in the last week, as some have at follow-up, could not answer this required question.
 */
export const NO_PAIN_REGION = 'ingen';
const REGIONS: Option[] = [
  ['kjeve-v', 'Kjeve, venstre'],
  ['kjeve-h', 'Kjeve, høyre'],
  ['nakke', 'Nakke'],
  ['skulder-v', 'Skulder, venstre'],
  ['skulder-h', 'Skulder, høyre'],
  ['overarm-v', 'Overarm, venstre'],
  ['overarm-h', 'Overarm, høyre'],
  ['underarm-v', 'Underarm, venstre'],
  ['underarm-h', 'Underarm, høyre'],
  ['bryst', 'Bryst'],
  ['ovre-rygg', 'Øvre del av ryggen'],
  ['mage', 'Mage'],
  ['korsrygg', 'Korsrygg'],
  ['hofte-v', 'Hofte/sete, venstre'],
  ['hofte-h', 'Hofte/sete, høyre'],
  ['lar-v', 'Lår, venstre'],
  ['lar-h', 'Lår, høyre'],
  ['legg-v', 'Legg, venstre'],
  ['legg-h', 'Legg, høyre'],
  [NO_PAIN_REGION, 'Jeg har ikke hatt smerter den siste uken', 'exclusive'],
];

/** Pain locations (ACR widespread pain index regions) and pain intensity NRS 0–10 (own wording). */
export function pain(): QuestionnaireItem {
  const nrs = (id: string, text: string, code?: string) =>
    integer(
      id,
      text,
      0,
      10,
      code
        ? {
            code: [
              {
                system: LOINC,
                code,
                display: 'Pain severity - 0-10 verbal numeric rating [Score] - Reported',
              },
            ],
          }
        : {},
    );
  return group(
    'smerte',
    'Smertested og smerteintensitet',
    [
      choice(
        'smertesteder',
        'Hvor har du hatt smerter den siste uken? (Du kan velge flere)',
        cs('smerteregion'),
        REGIONS,
        { repeats: true, required: true },
      ),
      score(
        'antall-smertesteder',
        'Antall smerteområder (beregnet)',
        'integer',
        `iif(%smertesteder.exists(), %smertesteder.where(value.code != '${NO_PAIN_REGION}').count())`,
        'Antall valgte regioner (0–19), som i ACR widespread pain index; «ingen smerter» gir 0',
      ),
      display('nrs-info', 'Angi smertene på en skala fra 0 (ingen smerte) til 10 (verst tenkelige smerte).'),
      nrs('nrs-verst', 'Hvor sterke var smertene dine da de var på sitt verste den siste uken?'),
      nrs('nrs-minst', 'Hvor sterke var smertene dine da de var på sitt minste den siste uken?'),
      nrs('nrs-gjennomsnitt', 'Hvor sterke var smertene dine i gjennomsnitt den siste uken?'),
      nrs('nrs-naa', 'Hvor sterke er smertene dine akkurat nå?', '72514-3'),
      score(
        'smerteintensitet',
        'Smerteintensitet, gjennomsnitt av de fire spørsmålene (beregnet)',
        'decimal',
        mean('nrs', 4),
        'Gjennomsnitt av verst, minst, gjennomsnitt og nå; krever alle fire',
        2,
      ),
    ],
    {
      extension: [
        variable('smertesteder', "item.where(linkId = 'smertesteder').answer"),
        ...itemScores('nrs', ['nrs-verst', 'nrs-minst', 'nrs-gjennomsnitt', 'nrs-naa'], 'value'),
      ],
    },
  );
}

/** BPI-SF interference block: 7 items 0–10; mean valid when at least 4 of 7 are answered. */
export function bpiInterference(): QuestionnaireItem {
  const domains = [
    'generell aktivitet',
    'humør',
    'gangfunksjon',
    'vanlig arbeid',
    'forhold til andre',
    'søvn',
    'livsglede',
  ];
  return group(
    'bpi',
    'Hvordan smertene påvirker hverdagen din',
    [
      display(
        'bpi-lisens',
        `${PLACEHOLDER} Brief Pain Inventory (BPI-SF) © MD Anderson Cancer Center / C. Cleeland. Svar med et tall fra 0 (påvirker ikke) til 10 (påvirker fullstendig).`,
      ),
      ...domains.map((d, i) => integer(`bpi-${i + 1}`, `${PLACEHOLDER_MARK} BPI ${i + 1}: ${d}`, 0, 10)),
      score(
        'bpi-paavirkning',
        'BPI påvirkningsskår, gjennomsnitt (beregnet)',
        'decimal',
        mean('bpi', 4),
        'Gjennomsnitt av besvarte ledd; gyldig når minst 4 av 7 er besvart',
        2,
        { system: LOINC, code: '77565-0', display: 'Pain interference score [BPI Short Form]' },
      ),
    ],
    {
      extension: [...itemScores('bpi', numbered('bpi', range(1, 7)), 'value')],
    },
  );
}

const HSCL_SCALE: Option[] = [
  ['1', 'Ikke plaget'],
  ['2', 'Litt plaget'],
  ['3', 'Ganske mye plaget'],
  ['4', 'Veldig mye plaget'],
];
/** HSCL-25 items that make up HSCL-10 (Strand et al. 2003). */
export const HSCL10_ITEMS = [1, 2, 3, 4, 12, 16, 17, 18, 24, 25];

/** Hopkins Symptom Checklist-25 (10 anxiety, 15 depression items, 1–4), with the HSCL-10 subset score. */
export function hscl25(): QuestionnaireItem {
  const all = range(1, 25);
  return group(
    'hscl',
    'Psykiske plager',
    [
      display(
        'hscl-lisens',
        `${PLACEHOLDER} Hopkins Symptom Checklist-25 (Derogatis m.fl. 1974); rettighetene til den norske oversettelsen er ikke avklart. Hvor mye har hver av plagene nedenfor plaget deg de siste 14 dagene?`,
      ),
      // Which subscale an item belongs to is the scoring's business (the variables below), not the patient's.
      ...all.map((n) =>
        choice(`hscl-${n}`, `${PLACEHOLDER_MARK} HSCL-25 spørsmål ${n}`, cs('hscl-skala'), HSCL_SCALE),
      ),
      score(
        'hscl-25-total',
        'HSCL-25 totalskår, gjennomsnitt (beregnet)',
        'decimal',
        mean('hscl25', 20),
        'Gjennomsnitt av besvarte ledd; gyldig når minst 20 av 25 (80 %) er besvart. ≥1,75 regnes som betydelige plager.',
        2,
      ),
      score(
        'hscl-25-angst',
        'HSCL-25 angst, gjennomsnitt (beregnet)',
        'decimal',
        mean('hsclAngst', 8),
        'Ledd 1–10; gyldig når minst 8 av 10 er besvart',
        2,
      ),
      score(
        'hscl-25-depresjon',
        'HSCL-25 depresjon, gjennomsnitt (beregnet)',
        'decimal',
        mean('hsclDepresjon', 12),
        'Ledd 11–25; gyldig når minst 12 av 15 er besvart',
        2,
      ),
      score(
        'hscl10-gjennomsnitt',
        'HSCL-10, gjennomsnitt (beregnet)',
        'decimal',
        mean('hscl10', 7),
        'Ledd 1, 2, 3, 4, 12, 16, 17, 18, 24, 25; gyldig når minst 7 av 10 er besvart. ≥1,85 regnes som betydelige plager.',
        2,
      ),
    ],
    {
      extension: [
        ...itemScores('hscl25', numbered('hscl', all)),
        ...itemScores('hsclAngst', numbered('hscl', range(1, 10))),
        ...itemScores('hsclDepresjon', numbered('hscl', range(11, 25))),
        ...itemScores('hscl10', numbered('hscl', HSCL10_ITEMS)),
      ],
    },
  );
}

/** Insomnia Severity Index: 7 items 0–4, sum 0–28, all items required. */
export function isi(): QuestionnaireItem {
  const severity: Option[] = [
    ['0', 'Ingen'],
    ['1', 'Milde'],
    ['2', 'Moderate'],
    ['3', 'Alvorlige'],
    ['4', 'Svært alvorlige'],
  ];
  const satisfaction: Option[] = [
    ['0', 'Svært fornøyd'],
    ['1', 'Fornøyd'],
    ['2', 'Nøytral'],
    ['3', 'Misfornøyd'],
    ['4', 'Svært misfornøyd'],
  ];
  const extent: Option[] = [
    ['0', 'Ikke i det hele tatt'],
    ['1', 'Litt'],
    ['2', 'Noe'],
    ['3', 'Mye'],
    ['4', 'Svært mye'],
  ];
  const topics = [
    'vansker med å sovne',
    'vansker med å sove gjennom natten',
    'for tidlig oppvåkning',
    'tilfredshet med søvnen',
    'hvor merkbare søvnvanskene er for andre',
    'bekymring for søvnvanskene',
    'påvirkning på funksjon på dagtid',
  ];
  const scales = [severity, severity, severity, satisfaction, extent, extent, extent];
  return group(
    'isi',
    'Søvn',
    [
      display(
        'isi-lisens',
        `${PLACEHOLDER} Insomnia Severity Index (ISI) © C.M. Morin, distribuert av Mapi Research Trust. Gjelder de siste 2 ukene.`,
      ),
      ...topics.map((t, i) =>
        choice(
          `isi-${i + 1}`,
          `${PLACEHOLDER_MARK} ISI ${i + 1}: ${t}`,
          cs(i < 3 ? 'isi-alvorlighet' : i === 3 ? 'isi-tilfredshet' : 'isi-grad'),
          scales[i],
        ),
      ),
      score(
        'isi-sum',
        'ISI sumskår (beregnet)',
        'integer',
        proratedSum('isi', 7, 7),
        'Sum 0–28; krever alle 7 ledd. 0–7 ingen, 8–14 under terskel, 15–21 moderat, 22–28 alvorlig insomni.',
      ),
    ],
    {
      extension: [...itemScores('isi', numbered('isi', range(1, 7)))],
    },
  );
}

/** Chalder Fatigue Questionnaire (11 items, Likert 0–3) with the duration item of the Norwegian 13-item form. */
export function cfq(): QuestionnaireItem {
  const scale: Option[] = [
    ['0', 'Mindre enn vanlig'],
    ['1', 'Ikke mer enn vanlig'],
    ['2', 'Mer enn vanlig'],
    ['3', 'Mye mer enn vanlig'],
  ];
  return group(
    'cfq',
    'Utmattelse',
    [
      display(
        'cfq-lisens',
        `${PLACEHOLDER} Chalder Fatigue Questionnaire (CFQ) © T. Chalder. Gjelder den siste måneden sammenlignet med da du sist følte deg frisk.`,
      ),
      // Physical (1–7) and mental (8–11) fatigue are subscales for scoring, not labels for the patient.
      ...range(1, 11).map((n) =>
        choice(`cfq-${n}`, `${PLACEHOLDER_MARK} CFQ spørsmål ${n}`, cs('cfq-likert'), scale),
      ),
      choice('cfq-varighet', 'Hvor lenge har du følt deg utmattet?', cs('cfq-varighet'), [
        ['ikke-utmattet', 'Jeg føler meg ikke utmattet'],
        ['under-1u', 'Mindre enn én uke'],
        ['under-3m', 'Mindre enn 3 måneder'],
        ['3-6m', '3–6 måneder'],
        ['over-6m', 'Mer enn 6 måneder'],
      ]),
      score(
        'cfq-total',
        'Utmattelse totalskår 0–33 (beregnet)',
        'integer',
        proratedSum('cfq', 11, 11),
        'Likert 0-1-2-3, sum av 11 ledd; krever alle ledd',
      ),
      score(
        'cfq-fysisk',
        'Fysisk utmattelse 0–21 (beregnet)',
        'integer',
        proratedSum('cfqFysisk', 7, 7),
        'Sum av ledd 1–7; krever alle',
      ),
      score(
        'cfq-mental',
        'Mental utmattelse 0–12 (beregnet)',
        'integer',
        proratedSum('cfqMental', 4, 4),
        'Sum av ledd 8–11; krever alle',
      ),
      score(
        'cfq-bimodal',
        'Utmattelse, bimodal skår 0–11 (beregnet)',
        'integer',
        'iif(%cfq.count() = 11, %cfq.where($this >= 2).count())',
        'Bimodal 0-0-1-1; ≥4 regnes som kasus; krever alle ledd',
      ),
    ],
    {
      extension: [
        ...itemScores('cfq', numbered('cfq', range(1, 11))),
        ...itemScores('cfqFysisk', numbered('cfq', range(1, 7))),
        ...itemScores('cfqMental', numbered('cfq', range(8, 11))),
      ],
    },
  );
}

/** EQ-5D-5L: five dimensions × five levels and EQ VAS; the index needs the licensee's value set. */
export function eq5d(): QuestionnaireItem {
  const dims = ['gange', 'personlig stell', 'vanlige gjøremål', 'smerter/ubehag', 'angst/depresjon'];
  const levels: Option[] = range(1, 5).map((n) => [String(n), `${PLACEHOLDER_MARK} Nivå ${n}`]);
  return group(
    'eq5d',
    'Helsen din i dag',
    [
      display(
        'eq5d-lisens',
        `${PLACEHOLDER} EQ-5D-5L © EuroQol Research Foundation. Offisiell ordlyd og digitalt format lastes fra lisensinnehavers EuroQol-pakke. Gjelder i dag.`,
      ),
      ...dims.map((d, i) =>
        choice(`eq5d-${i + 1}`, `${PLACEHOLDER_MARK} EQ-5D-5L ${i + 1}: ${d}`, cs('eq5d-niva'), levels),
      ),
      integer(
        'eq5d-vas',
        `${PLACEHOLDER_MARK} EQ VAS: helsen din i dag, fra 0 (verst tenkelige) til 100 (best tenkelige)`,
        0,
        100,
      ),
      score(
        'eq5d-nivasum',
        'EQ-5D-5L nivåsum 5–25 (beregnet)',
        'integer',
        proratedSum('eq5d', 5, 5),
        'Level sum score; krever alle fem dimensjoner. Indeksverdi beregnes med norsk verdisett ved analyse.',
      ),
    ],
    {
      extension: [...itemScores('eq5d', numbered('eq5d', range(1, 5)))],
    },
  );
}

/** Pain Catastrophizing Scale: 13 items 0–4; total (prorated when one item is missing) and three subscales. */
export function pcs(): QuestionnaireItem {
  const scale: Option[] = [
    ['0', 'Ikke i det hele tatt'],
    ['1', 'I liten grad'],
    ['2', 'I moderat grad'],
    ['3', 'I stor grad'],
    ['4', 'Hele tiden'],
  ];
  return group(
    'pcs',
    'Tanker og følelser når du har smerter',
    [
      display(
        'pcs-lisens',
        `${PLACEHOLDER} Pain Catastrophizing Scale (PCS) © M.J.L. Sullivan. Tenk på hvordan du har det når du har smerter.`,
      ),
      // The subscales (rumination 8–11, magnification 6, 7, 13, helplessness 1–5, 12) are scored below.
      ...range(1, 13).map((n) =>
        choice(`pcs-${n}`, `${PLACEHOLDER_MARK} PCS spørsmål ${n}`, cs('pcs-skala'), scale),
      ),
      score(
        'pcs-total',
        'PCS totalskår 0–52 (beregnet)',
        'integer',
        proratedSum('pcs', 13, 12),
        'Sum av 13 ledd; med ett manglende ledd skaleres summen opp (gjennomsnitt × 13); ellers ingen skår. ≥30 regnes som klinisk relevant.',
      ),
      score(
        'pcs-grubling',
        'PCS grubling 0–16 (beregnet)',
        'integer',
        proratedSum('pcsGrubling', 4, 4),
        'Ledd 8–11; krever alle',
      ),
      score(
        'pcs-forstorring',
        'PCS forstørring 0–12 (beregnet)',
        'integer',
        proratedSum('pcsForstorring', 3, 3),
        'Ledd 6, 7, 13; krever alle',
      ),
      score(
        'pcs-hjelpeloshet',
        'PCS hjelpeløshet 0–24 (beregnet)',
        'integer',
        proratedSum('pcsHjelpeloshet', 6, 6),
        'Ledd 1–5 og 12; krever alle',
      ),
    ],
    {
      extension: [
        ...itemScores('pcs', numbered('pcs', range(1, 13))),
        ...itemScores('pcsGrubling', numbered('pcs', [8, 9, 10, 11])),
        ...itemScores('pcsForstorring', numbered('pcs', [6, 7, 13])),
        ...itemScores('pcsHjelpeloshet', numbered('pcs', [1, 2, 3, 4, 5, 12])),
      ],
    },
  );
}

/** Patient Global Impression of Change (own Norwegian wording; no rights holder) and satisfaction. */
export function pgic(): QuestionnaireItem {
  const scale: Option[] = [
    ['1', 'Svært mye bedre'],
    ['2', 'Mye bedre'],
    ['3', 'Litt bedre'],
    ['4', 'Ingen endring'],
    ['5', 'Litt verre'],
    ['6', 'Mye verre'],
    ['7', 'Svært mye verre'],
  ];
  const sys = cs('pgic');
  return group(
    'pgic',
    'Endring siden behandlingen ved smerteklinikken',
    [
      choice(
        'pgic-global',
        'Sammenlignet med før du startet ved smerteklinikken, hvordan vil du beskrive tilstanden din nå alt i alt?',
        sys,
        scale,
        { required: true },
      ),
      choice('pgic-smerte', 'Hvordan er smertene dine nå sammenlignet med før?', sys, scale),
      choice('pgic-funksjon', 'Hvordan er funksjonen din i hverdagen nå sammenlignet med før?', sys, scale),
      choice('pgic-humor', 'Hvordan er humøret ditt nå sammenlignet med før?', sys, scale),
      score(
        'pgic-responder',
        'Mye eller svært mye bedre (beregnet)',
        'boolean',
        "%pgicGlobal.select($this = '1' or $this = '2')",
        'Responder etter IMMPACT: «mye bedre» eller «svært mye bedre»',
      ),
      integer(
        'tilfredshet',
        'Hvor fornøyd er du alt i alt med tilbudet ved smerteklinikken? 0 (svært misfornøyd) – 10 (svært fornøyd)',
        0,
        10,
      ),
      yesNo(
        'ny-behandling',
        'Har du fått annen behandling for smertene etter at du var ferdig ved smerteklinikken?',
      ),
      choice(
        'ny-behandling-hva',
        'Hva slags behandling? (Du kan velge flere)',
        cs('behandling-etter'),
        [
          ['fastlege', 'Oppfølging hos fastlege'],
          ['fysioterapi', 'Fysioterapi'],
          ['psykolog', 'Psykolog eller psykiater'],
          ['medisiner', 'Ny medisinering'],
          ['operasjon', 'Operasjon'],
          ['rehabilitering', 'Rehabiliteringsopphold'],
          ['annet', 'Annet'],
        ],
        { repeats: true, ...whenYes('ny-behandling') },
      ),
    ],
    {
      extension: [variable('pgicGlobal', "item.where(linkId = 'pgic-global').answer.value.code")],
    },
  );
}
