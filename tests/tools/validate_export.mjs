// Validates a prov export against the official schemas and published formats, for the export
// tests (tests/tools/validate.h runs it through the shell).
//
//   node tests/tools/validate_export.mjs cyclonedx|spdx3|hf-card FILE...
//
// Exit 0: every file valid. Exit 1: invalid, one reason per line on stdout (prefixed with the
// file's name when several are given). Exit 77: cannot check (the
// validators in .devdeps/, installed by scripts/setup, or the schemas in ../shared/schemas are
// absent); the reason on stdout.
//
// cyclonedx  the official CycloneDX 1.6 JSON schema (draft-07, with the JSF and SPDX license-id
//            schemas it references), under Ajv with the formats the CycloneDX JS library enables
//            (ajv-formats, ajv-formats-draft2019).
// spdx3      (1) the official SPDX 3.0.1 JSON schema (draft 2020-12) under Ajv; (2) JSON-LD
//            expansion with the official context in safe mode, which fails on any term the
//            context does not define (a JSON-LD processor would drop it silently); (3) SHACL
//            validation of the expanded graph against the official SPDX 3.0.1 model (spdx-model.ttl,
//            merged into the data graph for its class hierarchy, as spdx3-validate does), reporting
//            violations on the document's own nodes; (4) the AI profile's conformance rules, which
//            the model's SHACL does not carry: the AIPackage "External properties restrictions"
//            (suppliedBy, downloadLocation, packageVersion, primaryPurpose, releaseTime: minCount 1)
//            and exactly one hasConcludedLicense and one hasDeclaredLicense Relationship from every
//            AIPackage to an AnyLicenseInfo (spdx-3-model, model/AI/AI.md and
//            model/AI/Classes/AIPackage.md of 3.0.1), written below as SHACL and checked by the same
//            engine; every property they name must be one the official model defines.
// hf-card    the Hugging Face model card metadata rules: a YAML front matter block that parses;
//            base_model a Hub repo id or a list of them (huggingface_hub's repo-id rule: optional
//            "namespace/", then 1-96 of [A-Za-z0-9_.-], no "--" or "..", not ending in ".git");
//            base_model_relation one of adapter, merge, quantized, finetune, and only with a
//            base_model.
import { readFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
const devdeps = process.env.PROV_DEVDEPS || path.join(root, '.devdeps');
const schemas = process.env.PROV_SCHEMAS || path.resolve(root, '..', 'shared', 'schemas');

function skip(why) {
  console.log(why);
  process.exit(77);
}
function fail(reasons) {
  for (const r of reasons) console.log(r);
  process.exit(reasons.length ? 1 : 0);
}

const [kind, ...files] = process.argv.slice(2);
if (!['cyclonedx', 'spdx3', 'hf-card'].includes(kind) || files.length === 0) {
  console.log('usage: validate_export.mjs cyclonedx|spdx3|hf-card FILE...');
  process.exit(2);
}
if (!existsSync(path.join(devdeps, 'node_modules'))) {
  skip(`validators not installed (${devdeps}/node_modules): run scripts/setup`);
}
const require = createRequire(path.join(devdeps, 'package.json'));
async function load(name) {
  let resolved;
  try {
    resolved = require.resolve(name);
  } catch (e) {
    skip(`validator package ${name} not installed in ${devdeps}: run scripts/setup`);
  }
  const m = await import(pathToFileURL(resolved).href);
  return m.default ?? m;
}
function schemaFile(name) {
  const p = path.join(schemas, name);
  if (!existsSync(p)) skip(`official schema ${p} not found (../shared/schemas)`);
  return p;
}
const readJson = (p) => JSON.parse(readFileSync(p, 'utf8'));
// Ajv's errors, the ones at a member first: a oneOf over every SPDX class fails at the document
// root for each alternative, which says little once the member at fault is named.
function ajvErrors(errors) {
  const all = (errors || []).map((e) => `schema: ${e.instancePath || '/'} ${e.message} ${JSON.stringify(e.params)}`);
  const specific = (errors || []).filter((e) => e.instancePath).map((e) => `schema: ${e.instancePath} ${e.message} ${JSON.stringify(e.params)}`);
  if (specific.length === 0 || specific.length === all.length) return all;
  return [...specific, `schema: and ${all.length - specific.length} errors at the document root`];
}

// Loads and compiles once per run, however many files are checked.
function once(make) {
  let value;
  return () => (value ??= make());
}

const cyclonedxSchema = once(async () => {
  const Ajv = await load('ajv');
  const addFormats = await load('ajv-formats');
  const addFormats2019 = await load('ajv-formats-draft2019');
  const ajv = new (Ajv.default ?? Ajv)({ strict: false, allErrors: true });
  addFormats(ajv);
  addFormats2019(ajv);
  ajv.addSchema(readJson(schemaFile('spdx.schema.json')));
  ajv.addSchema(readJson(schemaFile('jsf-0.82.schema.json')));
  return ajv.compile(readJson(schemaFile('bom-1.6.schema.json')));
});

async function cyclonedx(doc) {
  const validate = await cyclonedxSchema();
  return validate(doc) ? [] : ajvErrors(validate.errors);
}

const CORE = 'https://spdx.org/rdf/3.0.1/terms/Core/';
const SOFTWARE = 'https://spdx.org/rdf/3.0.1/terms/Software/';
const AI = 'https://spdx.org/rdf/3.0.1/terms/AI/';
const SIMPLE = 'https://spdx.org/rdf/3.0.1/terms/SimpleLicensing/';

// The AI profile's conformance rules (SPDX 3.0.1), as SHACL.
function aiProfileShapes() {
  const required = [
    `${CORE}suppliedBy`,
    `${SOFTWARE}downloadLocation`,
    `${SOFTWARE}packageVersion`,
    `${SOFTWARE}primaryPurpose`,
    `${CORE}releaseTime`,
  ];
  const license = (type) => `
    sh:property [ sh:path [ sh:inversePath <${CORE}from> ] ;
      sh:qualifiedValueShape [ sh:property [ sh:path <${CORE}relationshipType> ;
                                             sh:hasValue <${CORE}RelationshipType/${type}> ] ;
                               sh:property [ sh:path <${CORE}to> ;
                                             sh:class <${SIMPLE}AnyLicenseInfo> ;
                                             sh:minCount 1 ; sh:maxCount 1 ] ] ;
      sh:qualifiedMinCount 1 ; sh:qualifiedMaxCount 1 ;
      sh:message "AI profile: exactly one ${type} Relationship from an AIPackage to an AnyLicenseInfo" ]`;
  return {
    required,
    ttl: `@prefix sh: <http://www.w3.org/ns/shacl#> .
<urn:prov:test:ai-profile> a sh:NodeShape ; sh:targetClass <${AI}AIPackage> ;
${required
  .map((p) => `  sh:property [ sh:path <${p}> ; sh:minCount 1 ; sh:message "AI profile: AIPackage needs <${p}>" ] ;`)
  .join('\n')}
${license('hasConcludedLicense')} ;
${license('hasDeclaredLicense')} .
`,
  };
}

const spdxSchema = once(async () => {
  const Ajv2020 = await load('ajv/dist/2020');
  const addFormats = await load('ajv-formats');
  const ajv = new (Ajv2020.default ?? Ajv2020)({ strict: false, allErrors: true });
  addFormats(ajv);
  return ajv.compile(readJson(schemaFile('spdx-3.0.1-schema.json')));
});

const spdxContextUrl = 'https://spdx.org/rdf/3.0.1/spdx-context.jsonld';
const spdxContext = once(() => readJson(schemaFile('spdx-3.0.1-context.jsonld')));

// The SPDX model (its triples, for the data graph's class hierarchy) and the shapes to check: the
// model's, the AI profile's and the one OWL fact below.
const spdxShapes = once(async () => {
  const { Parser } = await load('n3');
  const rdf = await load('@zazuko/env');
  const model = new Parser().parse(readFileSync(schemaFile('spdx-3.0.1-model.ttl'), 'utf8'));
  const shapes = rdf.dataset(model);
  const problems = [];
  const modelTerms = new Set();
  for (const q of model) if (q.predicate.value === 'http://www.w3.org/ns/shacl#path') modelTerms.add(q.object.value);
  const ai = aiProfileShapes();
  for (const p of ai.required) {
    if (!modelTerms.has(p)) problems.push(`AI profile rule names ${p}, which the SPDX model does not define`);
  }
  for (const q of new Parser().parse(ai.ttl)) shapes.add(q);
  // The model declares its shapes as owl:Class (so each is an implicit class target); SHACL
  // recognises implicit targets on instances of rdfs:Class, which owl:Class is a subclass of (OWL 2
  // RDF-Based Semantics). Without this fact the engine would check nothing.
  shapes.add(rdf.quad(rdf.namedNode('http://www.w3.org/2002/07/owl#Class'),
    rdf.namedNode('http://www.w3.org/2000/01/rdf-schema#subClassOf'),
    rdf.namedNode('http://www.w3.org/2000/01/rdf-schema#Class')));
  return { model, shapes, problems, rdf };
});

async function spdx3(doc) {
  const reasons = [];
  // (1) JSON schema.
  const validate = await spdxSchema();
  if (!validate(doc)) reasons.push(...ajvErrors(validate.errors));

  // (2) JSON-LD in safe mode with the official context, served locally.
  const jsonld = await load('jsonld');
  const documentLoader = async (url) => {
    if (url !== spdxContextUrl) throw new Error(`JSON-LD: refusing to load ${url}`);
    return { contextUrl: null, documentUrl: url, document: spdxContext() };
  };
  let quads;
  try {
    quads = await jsonld.toRDF(doc, { documentLoader, safe: true });
  } catch (e) {
    reasons.push(`JSON-LD (safe mode): ${e.message}${e.details ? ' ' + JSON.stringify(e.details.event ?? e.details).slice(0, 400) : ''}`);
    return reasons;
  }

  // (3) SHACL against the official model, and (4) the AI profile rules.
  const { model, shapes, problems, rdf } = await spdxShapes();
  reasons.push(...problems);
  const SHACLValidator = await load('rdf-validate-shacl');
  const term = (t) => {
    if (t.termType === 'NamedNode') return rdf.namedNode(t.value);
    if (t.termType === 'BlankNode') return rdf.blankNode(t.value.replace(/^_:/, ''));
    if (t.termType === 'DefaultGraph') return rdf.defaultGraph();
    return rdf.literal(t.value, t.language || (t.datatype ? rdf.namedNode(t.datatype.value) : undefined));
  };
  const data = rdf.dataset(model);
  const own = new Set();
  for (const q of quads) {
    data.add(rdf.quad(term(q.subject), term(q.predicate), term(q.object)));
    own.add(q.subject.value.replace(/^_:/, ''));
  }
  const report = await new SHACLValidator(shapes, { factory: rdf }).validate(data);
  for (const r of report.results) {
    const focus = r.focusNode?.value ?? '';
    if (!own.has(focus.replace(/^_:/, ''))) continue;  // a node of the model itself
    const msg = r.message.map((m) => m.value).join('; ');
    reasons.push(`SHACL: ${focus} ${r.path?.value ?? ''}: ${msg || r.sourceConstraintComponent?.value}`);
  }
  return reasons;
}

async function hfCard(text) {
  const yaml = await load('js-yaml');
  if (!text.startsWith('---\n')) return ['card: no YAML front matter (must start with ---)'];
  const end = text.indexOf('\n---\n', 3);
  if (end < 0) return ['card: front matter not closed by ---'];
  let meta;
  try {
    meta = yaml.load(text.slice(4, end + 1));
  } catch (e) {
    return [`card: YAML: ${e.message}`];
  }
  if (meta === null || typeof meta !== 'object' || Array.isArray(meta)) return ['card: front matter is not a mapping'];
  const reasons = [];
  const repoId = (s) =>
    typeof s === 'string' && /^([\w\-.]+\/)?[\w\-.]{1,96}$/.test(s) && !s.includes('--') &&
    !s.includes('..') && !s.endsWith('.git') && !/^[-.]|\/[-.]|[-.]\/|[-.]$/.test(s);
  if ('base_model' in meta) {
    const list = Array.isArray(meta.base_model) ? meta.base_model : [meta.base_model];
    if (list.length === 0) reasons.push('card: base_model is an empty list');
    for (const b of list) if (!repoId(b)) reasons.push(`card: base_model ${JSON.stringify(b)} is not a Hub repo id`);
  }
  if ('base_model_relation' in meta) {
    if (!['adapter', 'merge', 'quantized', 'finetune'].includes(meta.base_model_relation)) {
      reasons.push(`card: base_model_relation ${JSON.stringify(meta.base_model_relation)} is not adapter, merge, quantized or finetune`);
    }
    if (!('base_model' in meta)) reasons.push('card: base_model_relation without base_model');
  }
  return reasons;
}

async function check(file) {
  const text = readFileSync(file, 'utf8');
  if (kind === 'hf-card') return hfCard(text);
  let doc;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    return [`not JSON: ${e.message}`];
  }
  return kind === 'cyclonedx' ? cyclonedx(doc) : spdx3(doc);
}

const reasons = [];
for (const file of files) {
  for (const r of await check(file)) reasons.push(files.length > 1 ? `${path.basename(file)}: ${r}` : r);
}
fail(reasons);
