"""Master data: the same companies as the ERP, the CRM and the warehouse each know them.

Each system keys a customer its own way (ERP number, Salesforce id, consignee code) and spells
its name its own way, and the CRM's pointer to the ERP number is missing or mistyped for some
accounts. That gap is deliberate and independent of `dirty_share`: matching customers across
systems, and reporting what could not be matched, is part of what the platform must do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.demo import text, vocab
from pipelines.demo.population import Population
from pipelines.demo.schema import TABLES
from pipelines.demo.seeds import rng as stream
from pipelines.demo.timeline import Timeline

FIRST_CUSTOMER_NO = 1_000_001
SHARE_PROSPECTS = 0.02  # of CRM accounts: never bought anything
SHARE_LINK_MISSING = 0.05  # CRM accounts of customers with no ERP number typed in
SHARE_LINK_WRONG = 0.02  # ... with a mistyped one (two digits swapped)
SHARE_WITH_PARENT = 0.03
ACCOUNTS_PER_REP = 200
CRM_YEARS = 9  # the CRM went live this many years before the as-of date; older accounts migrated

LINK_OK, LINK_MISSING, LINK_WRONG, LINK_NO_CRM = "ok", "missing", "wrong", "no_crm"

_GERMAN_CITY_REGION = {
    "Hamburg": "North", "Bremen": "North", "Hanover": "North", "Munich": "South",
    "Stuttgart": "South", "Nuremberg": "South", "Berlin": "East", "Leipzig": "East",
    "Dresden": "East", "Cologne": "West", "Dusseldorf": "West", "Dortmund": "West",
    "Essen": "West", "Bielefeld": "West",
}
_EMAIL_TLD = {"GB": "co.uk", "US": "com"}


@dataclass
class Parties:
    """Customer keys per population index, and the CRM account rows (customers + prospects)."""

    customer_no: pa.StringArray
    consignee_code: pa.StringArray
    account_id: pa.StringArray  # the customer's true CRM account (null: none)
    erp_link: pa.StringArray  # how the CRM account points at the ERP customer
    name: pa.StringArray  # the company name as the CRM spells it
    city: np.ndarray  # index into the country's city list
    account_pop: np.ndarray  # per account row: population index, -1 for prospects
    account_created: np.ndarray  # per account row: window day
    account_weight: np.ndarray  # per account row: latent value weight
    account_country: np.ndarray  # per account row: index into vocab.COUNTRIES
    accounts: pa.Table
    contacts: pa.Table


def _company_names(rng: np.random.Generator, country: np.ndarray,
                   city_name: pa.StringArray) -> pa.StringArray:
    """Invented company names: core word(s), a sector word, sometimes the city, a legal form."""
    n = len(country)
    core = text.pick(vocab.NAME_CORES, rng.integers(0, len(vocab.NAME_CORES), n))
    core2 = text.pick(vocab.NAME_CORES, rng.integers(0, len(vocab.NAME_CORES), n))
    sector = text.pick(vocab.NAME_SECTORS, rng.integers(0, len(vocab.NAME_SECTORS), n))
    forms = [f for c in vocab.COUNTRIES for f in c[4]]
    form_offset = np.cumsum([0] + [len(c[4]) for c in vocab.COUNTRIES])[:-1]
    form_count = np.array([len(c[4]) for c in vocab.COUNTRIES])
    form = text.pick(forms, form_offset[country] + rng.integers(0, 1 << 30, n) % form_count[country])
    pattern = rng.choice(3, size=n, p=[0.5, 0.3, 0.2])
    two_cores = text.join(core, " & ", core2, " ", sector)
    with_city = text.join(core, " ", sector, " ", city_name)
    plain = text.join(core, " ", sector)
    stem = pc.if_else(pa.array(pattern == 1), two_cores, pc.if_else(pa.array(pattern == 2),
                                                                      with_city, plain))
    return text.join(stem, form, sep=" ")


def build_parties(pop: Population, timeline: Timeline, seed: int) -> Parties:
    rng = stream(seed, "customers")
    n, end = pop.n, timeline.n_days

    cities = [city for c in vocab.COUNTRIES for city in c[5]]
    city_offset = np.cumsum([0] + [len(c[5]) for c in vocab.COUNTRIES])[:-1]
    city_count = np.array([len(c[5]) for c in vocab.COUNTRIES])
    city = rng.integers(0, 1 << 30, n) % city_count[pop.country]
    city_name = text.pick(cities, city_offset[pop.country] + city)
    name = _company_names(rng, pop.country, city_name)

    customer_no = text.number_text(FIRST_CUSTOMER_NO + np.arange(n))
    consignee = text.code("C", rng.choice(9_000_000, size=n, replace=False) + 1_000_000, 7)

    # CRM accounts: customers that have one, plus prospects that never bought.
    linked = np.flatnonzero(pop.has_crm)
    n_prospects = int(round(len(linked) * SHARE_PROSPECTS / (1 - SHARE_PROSPECTS)))
    shares = np.array([c[1] for c in vocab.COUNTRIES])
    pros_country = rng.choice(len(vocab.COUNTRIES), n_prospects, p=shares / shares.sum())
    pros_city = rng.integers(0, 1 << 30, n_prospects) % city_count[pros_country]
    pros_name = _company_names(
        rng, pros_country, text.pick(cities, city_offset[pros_country] + pros_city))
    pros_weight = np.exp(rng.normal(-1.0, 1.0, n_prospects))

    go_live = end - CRM_YEARS * 365
    crm_created = np.maximum(pop.created[linked] - rng.integers(0, 120, len(linked)),
                             go_live + rng.integers(0, 20, len(linked)))
    pros_created = rng.integers(-3 * 365, end, n_prospects)

    account_pop = np.concatenate([linked, np.full(n_prospects, -1)])
    account_created = np.concatenate([crm_created, pros_created])
    account_weight = np.concatenate([pop.weight[linked], pros_weight])
    acc_country = np.concatenate([pop.country[linked], pros_country])
    acc_city = np.concatenate([city[linked], pros_city])
    acc_name = pa.concat_arrays([name.take(pa.array(linked)), pros_name])
    # Salesforce ids rise with creation time, so the table is kept in that order.
    order = np.lexsort((np.arange(len(account_pop)), account_created))
    account_pop, account_created, account_weight = (
        account_pop[order], account_created[order], account_weight[order])
    acc_country, acc_city = acc_country[order], acc_city[order]
    acc_name = acc_name.take(pa.array(order))
    n_acc = len(account_pop)
    account_ids = record_ids(rng, "001", salesforce_pod(seed), n_acc)

    is_customer = account_pop >= 0
    pop_index = np.where(is_customer, account_pop, 0)
    account_of_pop = np.full(n, -1)
    account_of_pop[account_pop[is_customer]] = np.flatnonzero(is_customer)

    link = np.full(n, LINK_NO_CRM, dtype=object)
    draw = rng.random(n)
    link[pop.has_crm] = LINK_OK
    link[pop.has_crm & (draw < SHARE_LINK_MISSING)] = LINK_MISSING
    link[pop.has_crm & (draw >= SHARE_LINK_MISSING)
         & (draw < SHARE_LINK_MISSING + SHARE_LINK_WRONG)] = LINK_WRONG
    typed = _mistype(rng, FIRST_CUSTOMER_NO + np.arange(n))
    acc_link = link[pop_index]
    erp_number = pc.if_else(
        pa.array(is_customer & (acc_link == LINK_OK)),
        customer_no.take(pa.array(pop_index)),
        pc.if_else(pa.array(is_customer & (acc_link == LINK_WRONG)),
                   typed.take(pa.array(pop_index)), pa.scalar(None, pa.string())),
    )

    region = _regions(acc_country, acc_city)
    owner = _owners(rng, region)
    parent = _parents(rng, account_ids, account_weight, is_customer)
    rank = np.where(is_customer, pop.employee_band[pop_index],
                    np.minimum(rng.integers(0, 4, n_acc), rng.integers(0, 4, n_acc)))
    industry = np.where(is_customer, pop.industry[pop_index],
                        rng.integers(0, len(vocab.INDUSTRIES), n_acc))
    modified = account_created + (rng.random(n_acc) * (end - account_created)).astype(np.int64)
    modified = np.maximum(modified, account_created).clip(max=end - 1)

    # The CRM drops the legal form a sixth of the time; the ERP (customer table) keeps it.
    short = _drop_legal_form(acc_name, acc_country, rng.random(n_acc) < 0.15)
    accounts = TABLES["crm"]["accounts"].build({
        "account_id": account_ids,
        "account_name": short,
        "industry": text.pick([i[0] for i in vocab.INDUSTRIES], industry),
        "region": region,
        "employee_band": text.pick(vocab.EMPLOYEE_BANDS, rank),
        "owner_name": owner,
        "created_date": timeline.dates(account_created),
        "parent_account_id": parent,
        "erp_customer_number": erp_number,
        "last_modified": timeline.timestamps(modified, rng),
    })
    contacts = _contacts(rng, timeline, account_ids, account_created, account_weight,
                         short, acc_country, salesforce_pod(seed))
    account_id = pc.if_else(pa.array(account_of_pop >= 0),
                            account_ids.take(pa.array(np.maximum(account_of_pop, 0))),
                            pa.scalar(None, pa.string()))
    return Parties(
        customer_no=customer_no, consignee_code=consignee, account_id=account_id,
        erp_link=pa.array(link.tolist(), pa.string()), name=name, city=city,
        account_pop=account_pop, account_created=account_created, account_weight=account_weight,
        account_country=acc_country, accounts=accounts, contacts=contacts,
    )


def salesforce_pod(seed: int) -> str:
    """The two-character instance ('pod') part of every id of this demo org."""
    return text.from_matrix(text.base62(np.array([seed % 3844]), 2)).to_pylist()[0]


def record_ids(rng: np.random.Generator, prefix: str, pod: str, n: int) -> pa.StringArray:
    """Increasing Salesforce record numbers with gaps (other objects share the sequence).

    They stay below 62**7; ids above that are free for planted duplicates and orphans.
    """
    start = rng.integers(62**6, 62**7 - 10**10)
    return text.salesforce_ids(prefix, pod, start + np.cumsum(rng.integers(1, 40, n)))


def _mistype(rng: np.random.Generator, numbers: np.ndarray) -> pa.StringArray:
    """Customer numbers with two neighbouring digits swapped (last digit bumped if that is a no-op)."""
    chars = text.digits(numbers, 7)
    n = len(numbers)
    pos = rng.integers(1, 6, n)
    rows = np.arange(n)
    a, b = chars[rows, pos].copy(), chars[rows, pos + 1].copy()
    chars[rows, pos], chars[rows, pos + 1] = b, a
    same = a == b
    chars[same, 6] = (chars[same, 6] - ord("0") + 1) % 10 + ord("0")
    return text.from_matrix(chars)


def _regions(country: np.ndarray, city: np.ndarray) -> pa.StringArray:
    regions = np.array([c[3] for c in vocab.COUNTRIES], dtype=object)[country]
    germany = [c[0] for c in vocab.COUNTRIES].index("DE")
    german_cities = vocab.COUNTRIES[germany][5]
    by_city = np.array([_GERMAN_CITY_REGION.get(c, "Central") for c in german_cities], dtype=object)
    in_germany = country == germany
    regions[in_germany] = by_city[city[in_germany] % len(german_cities)]
    return pa.array(regions.tolist(), pa.string())


def _owners(rng: np.random.Generator, region: pa.StringArray) -> pa.StringArray:
    """About one sales rep per 200 accounts, each covering one region."""
    codes = pc.dictionary_encode(region)
    region_idx = codes.indices.to_numpy()
    count = np.bincount(region_idx)
    reps = np.maximum(np.ceil(count / ACCOUNTS_PER_REP).astype(int), 1)
    offset = np.concatenate([[0], np.cumsum(reps)])
    n_reps = offset[-1]
    combos = rng.choice(len(vocab.FIRST_NAMES) * len(vocab.LAST_NAMES), n_reps, replace=False)
    rep_names = text.join(
        text.pick(vocab.FIRST_NAMES, combos // len(vocab.LAST_NAMES)),
        text.pick(vocab.LAST_NAMES, combos % len(vocab.LAST_NAMES)), sep=" ")
    rep = offset[region_idx] + rng.integers(0, 1 << 30, len(region_idx)) % reps[region_idx]
    return rep_names.take(pa.array(rep))


def _parents(rng: np.random.Generator, account_ids: pa.StringArray, weight: np.ndarray,
             is_customer: np.ndarray) -> pa.StringArray:
    """A few accounts belong to a group whose head is a large account (one level, no cycles)."""
    n = len(weight)
    n_children = int(round(SHARE_WITH_PARENT * n))
    big = np.flatnonzero(is_customer & (weight >= np.quantile(weight, 0.9)))
    if n_children == 0 or len(big) == 0:
        return pa.nulls(n, pa.string())
    heads = rng.choice(big, size=max(1, min(len(big), n_children // 3)), replace=False)
    others = np.setdiff1d(np.arange(n), heads)
    children = rng.choice(others, size=min(n_children, len(others)), replace=False)
    parent = np.full(n, -1)
    parent[children] = rng.choice(heads, size=len(children))
    return pc.if_else(pa.array(parent >= 0), account_ids.take(pa.array(np.maximum(parent, 0))),
                      pa.scalar(None, pa.string()))


def _drop_legal_form(names: pa.StringArray, country: np.ndarray, drop: np.ndarray) -> pa.Array:
    forms = sorted({f for c in vocab.COUNTRIES for f in c[4]}, key=len, reverse=True)
    pattern = " (" + "|".join(f.replace(".", r"\.") for f in forms) + ")$"
    stripped = pc.replace_substring_regex(names, pattern, "")
    return pc.if_else(pa.array(drop), stripped, names)


def _contacts(rng: np.random.Generator, timeline: Timeline, account_ids: pa.StringArray,
              created: np.ndarray, weight: np.ndarray, names: pa.StringArray,
              country: np.ndarray, pod: str) -> pa.Table:
    end = timeline.n_days
    per_account = np.clip(1 + rng.poisson(0.5 * weight**0.35), 1, 5)
    acc = np.repeat(np.arange(len(per_account)), per_account)
    n = len(acc)
    day = created[acc] + (rng.random(n) * (end - created[acc]) * 0.6).astype(np.int64)
    order = np.lexsort((acc, day))
    acc, day = acc[order], day[order]
    first = text.pick(vocab.FIRST_NAMES, rng.integers(0, len(vocab.FIRST_NAMES), n))
    last = text.pick(vocab.LAST_NAMES, rng.integers(0, len(vocab.LAST_NAMES), n))
    codes = [c[0] for c in vocab.COUNTRIES]
    tld = text.pick([_EMAIL_TLD.get(c, c.lower()) for c in codes], country[acc])
    domain = text.slug(pc.replace_substring_regex(names.take(pa.array(acc)), r" .*$", ""))
    email = text.join(text.slug(first), ".", text.slug(last), "@", domain, ".", tld)
    modified = day + (rng.random(n) * (end - day)).astype(np.int64)
    return TABLES["crm"]["contacts"].build({
        "contact_id": record_ids(rng, "003", pod, n),
        "account_id": account_ids.take(pa.array(acc)),
        "first_name": first,
        "last_name": last,
        "email": email,
        "job_title": text.pick(vocab.JOB_TITLES, rng.integers(0, len(vocab.JOB_TITLES), n)),
        "created_date": timeline.dates(day),
        "last_modified": timeline.timestamps(np.minimum(modified, end - 1), rng),
    })


def erp_customers(pop: Population, parties: Parties, timeline: Timeline, seed: int,
                  annual_revenue: np.ndarray, lost: np.ndarray) -> pa.Table:
    """The ERP customer master; credit limits follow what the customer really buys.

    `lost` marks the customers the ERP records as lost (status LOST, else ACTIVE): the planted
    churn label (churn.py).
    """
    rng = stream(seed, "customers.erp")
    n, end = pop.n, timeline.n_days
    # Legacy records (created before the ERP migration 8 years ago) are in capitals.
    legacy = pop.created < end - 8 * 365
    name = pc.if_else(pa.array(legacy), pc.utf8_upper(parties.name), parties.name)
    cities = [city for c in vocab.COUNTRIES for city in c[5]]
    city_offset = np.cumsum([0] + [len(c[5]) for c in vocab.COUNTRIES])[:-1]
    credit = np.maximum(annual_revenue * pop.payment_terms / 365 * rng.uniform(1.5, 3.0, n), 5000)
    credit = np.round(credit / 1000) * 1000
    changed = pop.created + (rng.random(n) * (end - np.maximum(pop.created, 0))).astype(np.int64)
    changed = np.clip(np.maximum(changed, pop.created), None, end - 1)
    return TABLES["erp"]["customers"].build({
        "customer_no": parties.customer_no,
        "name": name,
        "country": text.pick([c[0] for c in vocab.COUNTRIES], pop.country),
        "city": text.pick(cities, city_offset[pop.country] + parties.city),
        "industry_code": text.pick([i[1] for i in vocab.INDUSTRIES], pop.industry),
        "payment_terms_days": pop.payment_terms.astype(np.int32),
        "credit_limit": credit,
        "created_on": timeline.text_dates(pop.created),
        "changed_on": timeline.text_dates(changed),
        "account_status": text.pick(["ACTIVE", "LOST"], lost.astype(np.int64)),
    })
