"""Vocabulary for readable synthetic names: plants, materials, companies, people, texts.

Kept as plain data so the generator stays readable; every list is used through the seeded RNG
only, so the same seed always picks the same names.
"""

from __future__ import annotations

from typing import NamedTuple


class PlantInfo(NamedTuple):
    code: str
    city: str
    country: str
    timezone: str


PLANTS: tuple[PlantInfo, ...] = (
    PlantInfo("BER", "Berlin", "DE", "Europe/Berlin"),
    PlantInfo("CHI", "Chicago", "US", "America/Chicago"),
    PlantInfo("PUN", "Pune", "IN", "Asia/Kolkata"),
    PlantInfo("SAO", "São Paulo", "BR", "America/Sao_Paulo"),
    PlantInfo("LYO", "Lyon", "FR", "Europe/Paris"),
    PlantInfo("SHA", "Shanghai", "CN", "Asia/Shanghai"),
    PlantInfo("MTY", "Monterrey", "MX", "America/Monterrey"),
    PlantInfo("KRK", "Kraków", "PL", "Europe/Warsaw"),
    PlantInfo("ATL", "Atlanta", "US", "America/New_York"),
    PlantInfo("OSA", "Osaka", "JP", "Asia/Tokyo"),
)


class Family(NamedTuple):
    """A product family: what a plant makes, from which ingredients and packaging."""

    key: str
    product: str  # finished product noun
    intermediate: str  # intermediate noun
    brands: tuple[str, ...]
    flavours: tuple[str, ...]
    sizes: tuple[tuple[str, float, int], ...]  # (label, kg of intermediate per unit, units per case)
    ingredients: tuple[str, ...]
    flavour_raw: str  # "{flavour} flavour concentrate"
    packaging: tuple[str, ...]  # "{size}" placeholders
    substitutes: tuple[tuple[str, str], ...]
    process_ops: tuple[str, ...]
    pack_ops: tuple[str, ...]


FAMILIES: tuple[Family, ...] = (
    Family(
        key="beverage", product="Soda", intermediate="syrup",
        brands=("Brightwater", "Sunpeak", "Fizzy Fox", "Alpen Spring"),
        flavours=("Lemon", "Orange", "Cola", "Ginger", "Grapefruit", "Raspberry", "Peach", "Apple",
                  "Mango", "Lime", "Cherry", "Elderflower", "Blood Orange", "Passion Fruit", "Yuzu",
                  "Blackcurrant", "Pear", "Pomegranate", "Watermelon", "Mint Lime"),
        sizes=(("0.33 L", 0.35, 24), ("0.5 L", 0.52, 12), ("1.5 L", 1.55, 6), ("2 L", 2.05, 6)),
        ingredients=("Cane sugar", "Glucose-fructose syrup", "Citric acid anhydrous", "Sodium citrate",
                     "Sodium benzoate", "Potassium sorbate", "Ascorbic acid", "Caffeine",
                     "Caramel colour E150d", "Stevia extract"),
        flavour_raw="{flavour} flavour concentrate",
        packaging=("PET bottle {size} clear", "PET closure 28 mm", "Carton tray {size}"),
        substitutes=(("Cane sugar", "Beet sugar"), ("Citric acid anhydrous", "Citric acid monohydrate"),
                     ("PET bottle {size} clear", "rPET bottle {size} clear")),
        process_ops=("dissolving", "blending", "pasteurising"),
        pack_ops=("filling", "capping", "labelling", "case packing"),
    ),
    Family(
        key="sauce", product="Sauce", intermediate="sauce base",
        brands=("Nonna Rosa", "Golden Ladle", "Casa Verde"),
        flavours=("Tomato Basil", "Arrabbiata", "Barbecue", "Curry", "Sweet Chili", "Garlic",
                  "Mushroom", "Pesto", "Smoky Chipotle", "Teriyaki", "Sweet Onion", "Peppercorn",
                  "Hollandaise", "Salsa Verde", "Korma", "Tikka", "Bolognese", "Puttanesca"),
        sizes=(("250 g jar", 0.26, 12), ("500 g jar", 0.51, 6), ("1 kg pouch", 1.02, 6)),
        ingredients=("Tomato paste 28 Brix", "Sunflower oil", "Spirit vinegar", "Sea salt",
                     "Modified maize starch", "Garlic powder", "Onion powder", "Xanthan gum",
                     "Cane sugar", "Black pepper ground"),
        flavour_raw="{flavour} spice blend",
        packaging=("Glass jar {size}", "Twist-off lid 63 mm", "Carton tray {size}"),
        substitutes=(("Sunflower oil", "Rapeseed oil"), ("Spirit vinegar", "Cider vinegar"),
                     ("Modified maize starch", "Modified potato starch")),
        process_ops=("weighing", "cooking", "homogenising"),
        pack_ops=("filling", "capping", "labelling", "case packing"),
    ),
    Family(
        key="homecare", product="Liquid Detergent", intermediate="detergent concentrate",
        brands=("Clearo", "PureNest", "Lumina"),
        flavours=("Ocean Breeze", "Lavender", "Fresh Linen", "Citrus", "Sensitive", "Mountain Pine",
                  "Spring Meadow", "Cotton Soft", "Aloe Vera", "Green Tea", "Vanilla Orchid",
                  "White Musk", "Eucalyptus", "Rain Fresh"),
        sizes=(("1 L", 1.04, 12), ("2 L", 2.06, 6), ("5 L", 5.1, 4)),
        ingredients=("LAS surfactant 96%", "SLES 70%", "Nonionic surfactant C12-15 7EO", "Sodium chloride",
                     "Protease enzyme blend", "Optical brightener CBS-X", "Preservative MIT/BIT",
                     "Sodium hydroxide 50%", "Citric acid anhydrous", "Blue colorant"),
        flavour_raw="{flavour} fragrance oil",
        packaging=("HDPE bottle {size}", "Dosing cap 38 mm", "Carton box {size}"),
        substitutes=(("SLES 70%", "SLES 28%"), ("Sodium chloride", "Sodium sulfate"),
                     ("HDPE bottle {size}", "PCR-HDPE bottle {size}")),
        process_ops=("charging", "mixing", "neutralising"),
        pack_ops=("filling", "capping", "labelling", "case packing"),
    ),
)

SUPPLIER_STEMS = (
    "Hansen", "Okafor", "Baltic", "Rio Verde", "Nordwind", "Sakura", "Atlas", "Blue Ridge", "Kestrel",
    "Meridian", "Vasquez", "Lindqvist", "Orion", "Pioneer", "Tamarind", "Harbor", "Sierra", "Delta",
    "Everest", "Falcon", "Granite", "Horizon", "Ivory", "Juniper", "Keystone", "Lakeside", "Monarch",
    "Northstar", "Oakridge", "Pacific",
)
SUPPLIER_KINDS = {
    "ingredient": ("Ingredients", "Chemicals", "Agro", "Food Solutions"),
    "flavour": ("Flavours", "Aromatics", "Essences"),
    "packaging": ("Packaging", "Polymers", "Glassworks", "Print & Label"),
}
LEGAL_FORMS = ("GmbH", "Ltd", "Inc.", "S.A.", "Ltda.", "Sp. z o.o.", "Pvt Ltd", "Co., Ltd", "SAS")
COUNTRIES = ("DE", "US", "IN", "BR", "FR", "CN", "MX", "PL", "NL", "IT", "ES", "JP", "TR", "GB")

CUSTOMER_STEMS = (
    "Freshmart", "Coastal", "Greenleaf", "Urban Pantry", "Sunrise", "Metro", "Valley", "Northgate",
    "Harvest", "Corner", "Bluebird", "Maple", "Riverside", "Summit", "Lighthouse", "Evergreen",
    "Golden Gate", "Prairie", "Silverline", "Crescent", "Redwood", "Oasis", "Pinecrest", "Starling",
)
CUSTOMER_KINDS = ("Foods", "Retail", "Wholesale", "Distribution", "Markets", "Stores", "Cash & Carry",
                  "Supermarkets", "Trading")

FIRST_NAMES = (
    "Anna", "Ben", "Carla", "David", "Elif", "Farid", "Greta", "Hiro", "Ines", "Jonas", "Kavya", "Lucas",
    "Maria", "Nils", "Olga", "Pedro", "Qin", "Rosa", "Samir", "Tanja", "Uma", "Victor", "Wen", "Ximena",
    "Yusuf", "Zofia", "Arjun", "Beatriz", "Chen", "Dmitri", "Emma", "Felipe", "Hannah", "Ivan", "Julia",
    "Kenji", "Leila", "Marco", "Nadia", "Oscar", "Priya", "Rafael", "Sofia", "Tomasz", "Valentina",
)
LAST_NAMES = (
    "Schmidt", "Okafor", "Patel", "Silva", "Martin", "Wang", "Garcia", "Kowalski", "Johnson", "Tanaka",
    "Müller", "Nguyen", "Rossi", "Kumar", "Santos", "Dubois", "Li", "Hernández", "Nowak", "Brown",
    "Yamamoto", "Fischer", "Ali", "Costa", "Lefèvre", "Zhang", "López", "Wiśniewski", "Miller", "Sato",
    "Weber", "Ivanova", "Shah", "Pereira", "Moreau", "Chen", "Ramírez", "Lewandowski", "Davis", "Kato",
)

MACHINE_TYPES = {
    "proc": (("Mixer", "MX", "mixing vessel"), ("Cooker", "CK", "heated kettle"),
             ("Homogeniser", "HG", "high-pressure homogeniser")),
    "pack": (("Filler", "FL", "rotary filler"), ("Capper", "CP", "screw capper"),
             ("Labeller", "LB", "wrap-around labeller")),
}

DOWNTIME_REASONS = (
    "Jam at infeed star wheel", "Servo drive fault", "Changeover overrun", "Missing material at line",
    "Sensor misalignment", "Conveyor belt slip", "Seal temperature alarm", "Pneumatic pressure low",
    "Product spill cleanup", "Label web break", "Power dip", "Waiting for QA release",
)
ANOMALY_SIGNALS = ("vibration_rms", "bearing_temperature", "motor_current", "pressure", "flow_rate",
                   "fill_weight_sd")
HOLD_REASONS = (
    "Fill weight out of specification", "Foreign matter suspected", "Seal integrity check failed",
    "Microbiology result pending", "Label misprint", "Viscosity out of range", "pH out of range",
    "Customer complaint investigation",
)
INCIDENT_TEMPLATES = {
    "deviation": (
        ("Process parameter deviation on {machine}",
         "During {order} the {param} on {machine} drifted outside the validated range for about "
         "{minutes} minutes. Operator {person} adjusted the setpoint and informed the shift supervisor."),
        ("Changeover step skipped on {machine}",
         "The line clearance checklist for {order} was signed without the allergen swab step. "
         "The step was repeated before restart; product impact is being assessed."),
    ),
    "nonconformance": (
        ("Out-of-spec result for {material}",
         "Quality control found {param} out of specification on a sample of {material} from {order}. "
         "Affected pallets were segregated pending investigation."),
        ("Customer complaint: {material}",
         "A customer reported {defect} on {material}. Retained samples are being tested."),
    ),
    "safety": (
        ("Near miss at {machine}",
         "{person} reported a near miss at {machine}: a guard interlock did not stop the drive during "
         "cleaning. The machine was locked out and maintenance was called."),
        ("Chemical splash near {machine}",
         "A small splash of cleaning agent occurred near {machine} during CIP. No injury; PPE was worn."),
    ),
    "downtime": (
        ("Unplanned stop of {machine}",
         "{machine} stopped for {minutes} minutes ({reason}). Production of {order} resumed after repair."),
    ),
}
PARAMS = ("fill weight", "product temperature", "mixing speed", "pH", "viscosity", "seal temperature",
          "torque on closures", "Brix value")
DEFECTS = ("an off-taste", "leaking closures", "a faded label", "a cloudy appearance", "short fill",
           "a crushed case")
SIGNALS_TEXT = {
    "vibration_rms": "vibration", "bearing_temperature": "bearing temperature",
    "motor_current": "motor current", "pressure": "line pressure", "flow_rate": "flow rate",
    "fill_weight_sd": "fill weight spread",
}
