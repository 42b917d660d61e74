"""Who the demo shop's contacts are: names, addresses, demographics. Pure and seeded.

Names come from small lists per language; emails are at the reserved example domains
(RFC 2606) and end in the contact's number, so they are unique. Only contacts in the US
get a phone number, from the 555-0100…0199 block that North American numbering keeps for
fiction: a demo database never texts a real person.
"""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta

from postillon.demo.catalogue import CATEGORY_KEYS, NEWSLETTER_TOPICS

EMAIL_DOMAINS = ("example.com", "example.com", "example.org", "example.net")

_FIRST_NAMES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # language: (female, male)
    "de": (
        ("Anna", "Laura", "Julia", "Lena", "Sarah", "Lisa", "Katharina", "Sophie", "Marie",
         "Johanna", "Hannah", "Leonie", "Emilia", "Clara", "Miriam", "Sabine", "Petra",
         "Claudia", "Monika", "Andrea", "Jana", "Franziska", "Nina", "Greta", "Jutta"),
        ("Lukas", "Jonas", "Felix", "Maximilian", "Leon", "Paul", "Tobias", "Florian",
         "Sebastian", "Jan", "Tim", "Niklas", "Michael", "Thomas", "Andreas", "Stefan",
         "Markus", "Jürgen", "Uwe", "Matthias", "Moritz", "Finn", "Elias", "Ben", "Philipp"),
    ),
    "pl": (
        ("Anna", "Maria", "Katarzyna", "Małgorzata", "Agnieszka", "Barbara", "Ewa",
         "Magdalena", "Joanna", "Aleksandra", "Zofia", "Zuzanna", "Julia", "Natalia", "Monika",
         "Karolina", "Paulina", "Marta"),
        ("Piotr", "Krzysztof", "Andrzej", "Tomasz", "Paweł", "Michał", "Marcin", "Jakub",
         "Łukasz", "Kamil", "Mateusz", "Adam", "Wojciech", "Szymon", "Bartosz", "Filip",
         "Antoni", "Jan"),
    ),
    "fr": (
        ("Camille", "Léa", "Manon", "Chloé", "Emma", "Inès", "Sarah", "Julie", "Marie",
         "Lucie", "Claire", "Élodie", "Nathalie", "Isabelle", "Sophie", "Céline", "Amélie",
         "Margaux", "Louise", "Juliette"),
        ("Lucas", "Hugo", "Louis", "Nathan", "Théo", "Arthur", "Jules", "Thomas", "Nicolas",
         "Julien", "Antoine", "Pierre", "Mathieu", "François", "Olivier", "Sébastien",
         "Maxime", "Alexandre", "Guillaume", "Benoît"),
    ),
    "en": (
        ("Olivia", "Emily", "Amelia", "Isla", "Ava", "Jessica", "Sophie", "Charlotte",
         "Grace", "Lucy", "Hannah", "Emma", "Sarah", "Rachel", "Laura", "Megan", "Chloe",
         "Ella", "Madison", "Ashley", "Jennifer", "Elizabeth", "Maria", "Priya"),
        ("Oliver", "George", "Harry", "Jack", "Jacob", "Noah", "Charlie", "Thomas", "James",
         "William", "Daniel", "Matthew", "Ryan", "Michael", "David", "Christopher", "Joshua",
         "Ethan", "Tyler", "Andrew", "Benjamin", "Samuel", "Carlos", "Arjun"),
    ),
}  # fmt: skip
_LAST_NAMES: dict[str, tuple[str, ...]] = {
    "de": ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker",
           "Schulz", "Hoffmann", "Schäfer", "Koch", "Bauer", "Richter", "Klein", "Wolf",
           "Schröder", "Neumann", "Schwarz", "Zimmermann", "Braun", "Krüger", "Hartmann",
           "Lange", "Werner", "Krause", "Lehmann", "Köhler", "Maier", "Huber", "Gruber",
           "Weiß", "Keller", "Brunner", "Yilmaz", "Nguyen"),
    # Adjective-like Polish names (…ski) take …ska for women.
    "pl": ("Nowak", "Kowalski", "Wiśniewski", "Wójcik", "Kowalczyk", "Kamiński",
           "Lewandowski", "Zieliński", "Szymański", "Woźniak", "Dąbrowski", "Kozłowski",
           "Jankowski", "Mazur", "Kwiatkowski", "Krawczyk", "Piotrowski", "Grabowski",
           "Nowakowski", "Pawłowski", "Michalski", "Król", "Wieczorek", "Wróbel"),
    "fr": ("Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand",
           "Leroy", "Moreau", "Simon", "Laurent", "Lefèvre", "Michel", "Garcia", "David",
           "Bertrand", "Roux", "Vincent", "Fournier", "Morel", "Girard", "Mercier", "Dupont",
           "Lambert", "Bonnet", "Fontaine", "Rousseau", "Blanc", "Guérin", "Faure"),
    "en": ("Smith", "Jones", "Williams", "Taylor", "Brown", "Davies", "Evans", "Wilson",
           "Thomas", "Johnson", "Roberts", "Robinson", "Thompson", "Wright", "Walker", "White",
           "Edwards", "Hughes", "Green", "Hall", "Wood", "Harris", "Lewis", "Clarke", "Turner",
           "Hill", "Scott", "Cooper", "Morris", "King", "Miller", "Davis", "Garcia",
           "Rodriguez", "Martinez", "Anderson", "Lee", "Patel", "O'Brien"),
}  # fmt: skip


@dataclass(frozen=True)
class City:
    name: str
    timezone: str
    weight: float
    area_code: str = ""  # US only: for the fictional 555-01xx numbers


@dataclass(frozen=True)
class Country:
    code: str
    language: str
    locale: str
    weight: float
    utc_offset: int  # hours, standard time: when people of this country shop
    cities: tuple[City, ...]


COUNTRIES: tuple[Country, ...] = (
    Country("DE", "de", "de-DE", 38, 1, (
        City("Berlin", "Europe/Berlin", 5), City("Hamburg", "Europe/Berlin", 3),
        City("München", "Europe/Berlin", 3), City("Köln", "Europe/Berlin", 2),
        City("Frankfurt am Main", "Europe/Berlin", 2), City("Stuttgart", "Europe/Berlin", 1.5),
        City("Leipzig", "Europe/Berlin", 1.5), City("Düsseldorf", "Europe/Berlin", 1.5),
        City("Dresden", "Europe/Berlin", 1), City("Freiburg im Breisgau", "Europe/Berlin", 1),
    )),
    Country("AT", "de", "de-AT", 6, 1, (
        City("Wien", "Europe/Vienna", 5), City("Graz", "Europe/Vienna", 1.5),
        City("Linz", "Europe/Vienna", 1), City("Salzburg", "Europe/Vienna", 1),
        City("Innsbruck", "Europe/Vienna", 1),
    )),
    Country("CH", "de", "de-CH", 4, 1, (
        City("Zürich", "Europe/Zurich", 3), City("Basel", "Europe/Zurich", 1.5),
        City("Bern", "Europe/Zurich", 1.5), City("Luzern", "Europe/Zurich", 1),
    )),
    Country("PL", "pl", "pl-PL", 14, 1, (
        City("Warszawa", "Europe/Warsaw", 4), City("Kraków", "Europe/Warsaw", 2.5),
        City("Wrocław", "Europe/Warsaw", 2), City("Gdańsk", "Europe/Warsaw", 1.5),
        City("Poznań", "Europe/Warsaw", 1.5), City("Łódź", "Europe/Warsaw", 1.5),
    )),
    Country("FR", "fr", "fr-FR", 12, 1, (
        City("Paris", "Europe/Paris", 5), City("Lyon", "Europe/Paris", 2),
        City("Marseille", "Europe/Paris", 1.5), City("Toulouse", "Europe/Paris", 1.5),
        City("Strasbourg", "Europe/Paris", 1), City("Nantes", "Europe/Paris", 1),
        City("Annecy", "Europe/Paris", 0.5),
    )),
    Country("GB", "en", "en-GB", 12, 0, (
        City("London", "Europe/London", 5), City("Manchester", "Europe/London", 2),
        City("Birmingham", "Europe/London", 1.5), City("Leeds", "Europe/London", 1),
        City("Bristol", "Europe/London", 1), City("Edinburgh", "Europe/London", 1),
    )),
    Country("US", "en", "en-US", 14, -6, (
        City("New York", "America/New_York", 4, "212"),
        City("Boston", "America/New_York", 1.5, "617"),
        City("Chicago", "America/Chicago", 2, "312"),
        City("Austin", "America/Chicago", 1.5, "512"),
        City("Denver", "America/Denver", 1.5, "303"),
        City("Los Angeles", "America/Los_Angeles", 3, "213"),
        City("Seattle", "America/Los_Angeles", 1.5, "206"),
    )),
)  # fmt: skip
_COUNTRY_WEIGHTS = tuple(country.weight for country in COUNTRIES)

GENDERS = ("female", "male", "diverse")
_FOLD = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "ł": "l", "'": ""})


@dataclass(frozen=True)
class Person:
    number: int
    first_name: str
    last_name: str
    email: str
    phone: str | None
    gender: str
    birthday: date
    country: Country
    city: City
    favourite_category: str
    newsletter_topics: tuple[str, ...]
    shoe_size: float


def make_person(rng: random.Random, number: int, today: date) -> Person:
    """One person; `number` (unique) ends their email address."""
    country = rng.choices(COUNTRIES, weights=_COUNTRY_WEIGHTS)[0]
    city = rng.choices(country.cities, weights=[c.weight for c in country.cities])[0]
    gender = rng.choices(GENDERS, weights=(52, 46, 2))[0]
    female_names, male_names = _FIRST_NAMES[country.language]
    female = gender == "female" or (gender == "diverse" and rng.random() < 0.5)
    first_name = rng.choice(female_names if female else male_names)
    last_name = rng.choice(_LAST_NAMES[country.language])
    if female and country.language == "pl" and last_name.endswith("ski"):
        last_name = last_name[:-1] + "a"
    age = min(75, max(18, int(rng.triangular(18, 76, 33))))
    # `age` years old today: born within the year before their last birthday.
    latest = date(today.year - age, today.month, min(today.day, 28))
    birthday = latest - timedelta(days=rng.randrange(365))
    favourite = _favourite_category(rng, gender, age)
    topics = {"new-arrivals", "sale"} if rng.random() < 0.5 else {"sale"}
    if favourite in NEWSLETTER_TOPICS:
        topics.add(favourite)
    if rng.random() < 0.15:
        topics.add("events")
    size = rng.gauss(39.0 if female else 43.5, 1.4)
    return Person(
        number=number,
        first_name=first_name,
        last_name=last_name,
        email=_email(rng, first_name, last_name, number),
        phone=_phone(rng, city),
        gender=gender,
        birthday=birthday,
        country=country,
        city=city,
        favourite_category=favourite,
        newsletter_topics=tuple(sorted(topics)),
        shoe_size=round(min(48.0, max(34.0, size)) * 2) / 2,
    )


def _favourite_category(rng: random.Random, gender: str, age: int) -> str:
    weights = {"shoes": 3.0, "running": 2.5, "outdoor": 2.0, "fitness": 2.0, "kids": 0.3,
               "accessories": 1.0}  # fmt: skip
    if 28 <= age <= 50:
        weights["kids"] = 2.0
    if age > 55:
        weights["outdoor"] += 2.0
        weights["fitness"] -= 1.0
    if gender == "female":
        weights["fitness"] += 1.0
    return rng.choices(CATEGORY_KEYS, weights=[weights[key] for key in CATEGORY_KEYS])[0]


def ascii_fold(text: str) -> str:
    """`Jürgen Łukasz Élodie` → `juergen lukasz elodie`, for email addresses."""
    text = text.lower().translate(_FOLD)
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if ch.isascii() and (ch.isalpha() or ch in " -"))


def _email(rng: random.Random, first_name: str, last_name: str, number: int) -> str:
    first = ascii_fold(first_name).replace(" ", "").replace("-", "")
    last = ascii_fold(last_name).replace(" ", "").replace("-", "")
    # The local part is letters (and . or _) followed by the number: unique per contact.
    local = rng.choice(
        (f"{first}.{last}", f"{first}{last}", f"{first[0]}{last}", f"{first}_{last}",
         f"{last}.{first}", f"{first}")
    )  # fmt: skip
    return f"{local}{number}@{rng.choice(EMAIL_DOMAINS)}"


def _phone(rng: random.Random, city: City) -> str | None:
    if not city.area_code or rng.random() < 0.4:
        return None
    return f"+1{city.area_code}55501{rng.randrange(100):02d}"
