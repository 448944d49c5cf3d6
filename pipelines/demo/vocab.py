"""Word lists the demo companies, people and products are made of.

Kept apart from the generating code so that the numbers there read as the model of the business,
and so a reviewer can see at a glance that no real company or person is named.
"""

from __future__ import annotations

# (ISO code, share of customers, currency, sales region, legal forms, cities)
COUNTRIES = [
    ("DE", 0.32, "EUR", "Central", ["GmbH", "AG", "GmbH & Co. KG", "KG"],
     ["Berlin", "Hamburg", "Munich", "Cologne", "Frankfurt", "Stuttgart", "Dusseldorf", "Dortmund",
      "Essen", "Leipzig", "Bremen", "Dresden", "Hanover", "Nuremberg", "Bielefeld", "Mannheim"]),
    ("AT", 0.05, "EUR", "Central", ["GmbH", "AG"], ["Vienna", "Graz", "Linz", "Salzburg"]),
    ("CH", 0.04, "EUR", "Central", ["AG", "GmbH", "SA"], ["Zurich", "Basel", "Bern", "Lucerne"]),
    ("FR", 0.10, "EUR", "West", ["SAS", "SA", "SARL"],
     ["Paris", "Lyon", "Marseille", "Toulouse", "Lille", "Nantes", "Strasbourg", "Bordeaux"]),
    ("BE", 0.04, "EUR", "West", ["NV", "BV", "SA"], ["Antwerp", "Brussels", "Ghent", "Liege"]),
    ("GB", 0.07, "GBP", "West", ["Ltd", "plc"],
     ["London", "Birmingham", "Manchester", "Leeds", "Glasgow", "Bristol", "Sheffield"]),
    ("NL", 0.07, "EUR", "North", ["B.V.", "N.V."],
     ["Amsterdam", "Rotterdam", "Eindhoven", "Utrecht", "Tilburg", "Groningen"]),
    ("DK", 0.02, "EUR", "North", ["A/S", "ApS"], ["Copenhagen", "Aarhus", "Odense"]),
    ("SE", 0.03, "EUR", "North", ["AB"], ["Stockholm", "Gothenburg", "Malmo", "Vasteras"]),
    ("PL", 0.06, "EUR", "East", ["Sp. z o.o.", "S.A."],
     ["Warsaw", "Krakow", "Wroclaw", "Poznan", "Gdansk", "Lodz", "Katowice"]),
    ("CZ", 0.03, "EUR", "East", ["s.r.o.", "a.s."], ["Prague", "Brno", "Ostrava", "Plzen"]),
    ("IT", 0.07, "EUR", "South", ["S.r.l.", "S.p.A."],
     ["Milan", "Turin", "Bologna", "Verona", "Brescia", "Bergamo", "Padua", "Florence"]),
    ("ES", 0.05, "EUR", "South", ["S.L.", "S.A."],
     ["Madrid", "Barcelona", "Valencia", "Bilbao", "Zaragoza", "Seville"]),
    ("US", 0.05, "USD", "West", ["Inc.", "LLC", "Corp."],
     ["Chicago", "Detroit", "Houston", "Cleveland", "Charlotte", "Milwaukee", "Atlanta"]),
]

# Order currencies and what one EUR of list price costs in them.
CURRENCIES = ["EUR", "GBP", "USD"]
FX_PER_EUR = [1.0, 0.86, 1.08]

# (CRM industry, ERP industry code, share)
INDUSTRIES = [
    ("Machinery", "MACH", 0.20),
    ("Automotive", "AUTO", 0.12),
    ("Construction", "CONS", 0.12),
    ("Energy & Utilities", "ENGY", 0.07),
    ("Food & Beverage", "FOOD", 0.08),
    ("Chemicals", "CHEM", 0.07),
    ("Metal Processing", "METL", 0.12),
    ("Logistics", "LOGI", 0.06),
    ("Electronics", "ELEC", 0.09),
    ("Public Sector", "PUBL", 0.04),
    ("Agriculture", "AGRI", 0.03),
]

NAME_CORES = [
    "Albers", "Achterberg", "Bauer", "Becker", "Berger", "Brandt", "Braun", "Dahl", "Dietz", "Eckert",
    "Engel", "Falk", "Fischer", "Franke", "Friedrich", "Graf", "Gruber", "Haas", "Hahn", "Hartmann",
    "Heller", "Herrmann", "Hoffmann", "Horn", "Huber", "Jansen", "Jung", "Kaiser", "Keller", "Klein",
    "Koch", "Kraus", "Krueger", "Kuhn", "Lang", "Lehmann", "Lorenz", "Ludwig", "Maier", "Mertens",
    "Meyer", "Moeller", "Müller", "Neumann", "Otto", "Peters", "Pohl", "Roth", "Sauer", "Schmid",
    "Schubert", "Schulz", "Schwarz", "Seidel", "Simon", "Sommer", "Stark", "Stein", "Vogel", "Voigt",
    "Wagner", "Walter", "Weber", "Wolf", "Zimmer", "Arnaud", "Bernard", "Blanc", "Bonnet", "Dubois",
    "Durand", "Fontaine", "Garnier", "Girard", "Lambert", "Laurent", "Lefebvre", "Mercier",
    "Moreau", "Perrin", "Renard", "Rousseau", "Vincent", "Bakker", "De Vries", "Dekker", "Smit",
    "Van Dijk", "Visser", "Mulder", "Bos", "Vos", "Ashford", "Barrett", "Bennett", "Carter",
    "Fletcher", "Harper", "Hughes", "Kingsley", "Marsh", "Porter", "Sutton", "Turner", "Walsh",
    "Wright", "Bianchi", "Colombo", "Conti", "Ferrari", "Galli", "Greco", "Marino", "Ricci",
    "Romano", "Rossi", "Russo", "Moretti", "Alvarez", "Castillo", "Fernandez", "Garcia", "Navarro",
    "Ortega", "Ramos", "Serrano", "Kowalski", "Nowak", "Wisniewski", "Zielinski", "Novak", "Dvorak",
    "Svoboda", "Andersen", "Nielsen", "Lindqvist", "Berg", "Holm", "Lund", "Nord", "Aurora",
    "Apex", "Atlas", "Borealis", "Cobalt", "Delta", "Echo", "Falcon", "Granit", "Helix", "Ikon",
    "Juno", "Kappa", "Linea", "Magnet", "Nova", "Orion", "Polaris", "Quadra", "Radius", "Sigma",
    "Terra", "Titan", "Unitas", "Vector", "Vertex", "Zenit", "Argus", "Boreal", "Castor", "Nexus",
    "Pioneer", "Summit", "Meridian", "Keystone", "Cascade", "Sterling", "Hansa", "Rhein", "Elbe",
    "Donau", "Alpina", "Baltic", "Nordic", "Iberia", "Adria", "Carpat", "Lumen", "Ferro", "Stahl",
    "Metall", "Werk", "Kraft", "Tecno", "Integra", "Prima", "Optima", "Maxima", "Solid", "Robust",
]

NAME_SECTORS = [
    "Maschinenbau", "Industrietechnik", "Metallbau", "Engineering", "Systems", "Components",
    "Automation", "Werkzeugbau", "Logistik", "Antriebstechnik", "Fertigung", "Industries",
    "Technik", "Anlagenbau", "Elektro", "Bau", "Stahlbau", "Kunststofftechnik", "Fluidtechnik",
    "Manufacturing", "Solutions", "Industrial", "Energy", "Mechanics", "Precision", "Holding",
    "Group", "Services", "Foods", "Chemie", "Verpackung", "Handel", "Trading", "Supply", "Tools",
    "Montage", "Produktion", "Technologies", "Werke", "Fabrik",
]

FIRST_NAMES = [
    "Anna", "Andreas", "Alexander", "Birgit", "Bernd", "Claudia", "Christian", "Daniel", "Daniela",
    "Elena", "Erik", "Eva", "Felix", "Frank", "Gabriele", "Hannah", "Heike", "Jan", "Jens", "Julia",
    "Katharina", "Klaus", "Laura", "Lukas", "Maria", "Markus", "Martin", "Michael", "Monika", "Nina",
    "Oliver", "Petra", "Peter", "Ralf", "Sabine", "Sandra", "Sebastian", "Stefan", "Susanne",
    "Thomas", "Tobias", "Ute", "Claire", "Julien", "Camille", "Nicolas", "Sophie", "Pierre", "Emma",
    "James", "Oliver", "Charlotte", "George", "Lucy", "Marco", "Giulia", "Luca", "Chiara", "Javier",
    "Lucia", "Pablo", "Marta", "Piotr", "Anja", "Tomasz", "Katarzyna", "Lars", "Ingrid", "Sven",
    "Karin", "Pieter", "Sanne", "Joost", "Femke", "David", "Sarah", "Robert", "Jennifer",
]

LAST_NAMES = [
    "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz", "Hoffmann",
    "Koch", "Richter", "Klein", "Wolf", "Schroeder", "Neumann", "Schwarz", "Zimmermann", "Braun",
    "Krueger", "Hofmann", "Hartmann", "Lange", "Schmitt", "Werner", "Krause", "Meier", "Lehmann",
    "Schmid", "Schulze", "Maier", "Koehler", "Herrmann", "Koenig", "Walter", "Mayer", "Huber",
    "Kaiser", "Fuchs", "Peters", "Lang", "Scholz", "Moeller", "Weiss", "Jung", "Hahn", "Martin",
    "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy", "Moreau",
    "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Evans",
    "Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Garcia", "Martinez", "Lopez", "Sanchez",
    "Nowak", "Kowalski", "Wojcik", "Jansen", "De Jong", "Visser", "Smit", "Hansen", "Larsen",
    "Johansson", "Karlsson", "Novak", "Horak", "Miller", "Davis", "Anderson", "Clark",
]

JOB_TITLES = [
    "Purchasing Manager", "Head of Procurement", "Buyer", "Senior Buyer", "Strategic Buyer",
    "Plant Manager", "Maintenance Manager", "Production Manager", "Operations Director",
    "Managing Director", "CFO", "Accounts Payable Clerk", "Logistics Coordinator",
    "Quality Manager", "Technical Director", "Engineering Lead", "Warehouse Manager",
    "Category Manager", "Supply Chain Manager", "Office Manager",
]

EMPLOYEE_BANDS = ["1-49", "50-249", "250-999", "1000+"]

# (product line, share of customers preferring it, unit-cost scale in EUR, weight kg/unit,
#  typical quantity per line, nouns)
PRODUCT_LINES = [
    ("Fasteners", 0.16, 0.4, 0.02, 200,
     ["Hex bolt", "Socket screw", "Hex nut", "Washer", "Threaded rod", "Anchor", "Rivet",
      "Wood screw", "Self-tapping screw", "Locking nut"]),
    ("Tools", 0.07, 35.0, 1.2, 3,
     ["Torque wrench", "Drill bit set", "Hammer", "Screwdriver set", "Pliers", "Socket set",
      "Hole saw", "Cutting disc", "Tap set", "Spirit level"]),
    ("Bearings", 0.10, 18.0, 0.4, 10,
     ["Ball bearing", "Roller bearing", "Needle bearing", "Pillow block", "Thrust bearing",
      "Linear bearing", "Bearing sleeve"]),
    ("Electrical", 0.12, 12.0, 0.3, 15,
     ["Cable", "Circuit breaker", "Terminal block", "Contactor", "Relay", "Fuse", "Connector",
      "Cable gland", "Junction box", "LED panel"]),
    ("Hydraulics", 0.08, 85.0, 3.5, 3,
     ["Hydraulic hose", "Gear pump", "Directional valve", "Hydraulic cylinder", "Coupling",
      "Pressure gauge", "Return filter"]),
    ("Pneumatics", 0.07, 40.0, 0.8, 5,
     ["Pneumatic cylinder", "Solenoid valve", "Air hose", "Push-in fitting", "Pressure regulator",
      "Air filter", "Silencer"]),
    ("Safety", 0.11, 9.0, 0.3, 20,
     ["Safety gloves", "Safety glasses", "Ear protection", "Hard hat", "Safety shoes",
      "Hi-vis vest", "Respirator mask", "First aid kit"]),
    ("Packaging", 0.09, 2.5, 0.5, 80,
     ["Stretch film", "Carton", "Packing tape", "Pallet strap", "Bubble wrap", "Label roll",
      "Edge protector"]),
    ("Lubricants", 0.08, 14.0, 1.0, 8,
     ["Hydraulic oil", "Gear oil", "Multi-purpose grease", "Cutting fluid", "Chain spray",
      "Penetrating oil"]),
    ("Sensors", 0.07, 60.0, 0.2, 3,
     ["Proximity sensor", "Photoelectric sensor", "Pressure sensor", "Temperature probe",
      "Encoder", "Limit switch", "Level sensor"]),
]

# Pairs planted as cross-selling affinities: buyers of the first line also buy the second with
# this probability (the lift a basket analysis should find).
AFFINITY_PAIRS = [
    ("Hydraulics", "Pneumatics", 0.8),
    ("Fasteners", "Tools", 0.8),
    ("Electrical", "Sensors", 0.75),
]

SPEC_SIZES = ["M4", "M5", "M6", "M8", "M10", "M12", "M16", "M20", "DN6", "DN10", "DN16", "DN25",
              "1/4\"", "3/8\"", "1/2\"", "3/4\"", "S", "M", "L", "XL", "5 l", "20 l", "10 m", "50 m"]
SPEC_GRADES = ["standard", "premium", "heavy duty", "stainless", "zinc plated", "industrial",
               "compact", "pro", "ATEX", "food grade"]

SALES_CHANNELS = ["Field Sales", "Inside Sales", "Web Shop", "EDI", "Phone"]

CARRIERS = ["DHL Freight", "DB Schenker", "Kuehne+Nagel", "DSV", "Dachser", "GLS", "UPS", "Hellmann"]

OPPORTUNITY_KINDS = ["Framework Agreement", "Replenishment", "Project", "Annual Contract",
                     "Trial Order", "Plant Expansion", "Service Contract"]

CASE_SUBJECTS = {
    "Complaint": ["Wrong quantity delivered", "Product quality below specification",
                  "Invoice amount disputed", "Repeated delivery delays", "Damaged packaging",
                  "Unfriendly service on hotline"],
    "Question": ["Question about invoice", "Request for product datasheet",
                 "Availability of spare parts", "Change of delivery address", "Price inquiry",
                 "Access to web shop"],
    "Repair": ["Pump leaking after installation", "Sensor reading drifts", "Tool broken under warranty",
               "Valve does not switch", "Cylinder seal worn out"],
    "Delivery Issue": ["Shipment not received", "Partial delivery", "Delivery to wrong site",
                       "Tracking number missing", "Delivery earlier than requested"],
}

RETURN_REASONS = ["Damaged", "Wrong item", "Quality", "Late delivery", "No longer needed"]
