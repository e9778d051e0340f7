"""The real Olist data's facts that the generator reproduces.

Times are epoch seconds of naive timestamps, as the files write them (``_ts``). The
categories (Portuguese, English) are in the order of the real translation file, whose
bytes the generator reproduces; the real products per category are generation weights.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np

DAY = 86_400
EPOCH = datetime(1970, 1, 1)


def _ts(text: str) -> int:
    return int((datetime.fromisoformat(text) - EPOCH).total_seconds())


# Orders per month, all statuses, in the real data (olist-facts 2.2).
MONTHLY_ORDERS: dict[str, int] = {
    "2016-09": 4, "2016-10": 324, "2016-11": 0, "2016-12": 1,
    "2017-01": 800, "2017-02": 1780, "2017-03": 2682, "2017-04": 2404,
    "2017-05": 3700, "2017-06": 3245, "2017-07": 4026, "2017-08": 4331,
    "2017-09": 4285, "2017-10": 4631, "2017-11": 7544, "2017-12": 5673,
    "2018-01": 7269, "2018-02": 6728, "2018-03": 7211, "2018-04": 6939,
    "2018-05": 6873, "2018-06": 6167, "2018-07": 6292, "2018-08": 6512,
    "2018-09": 16, "2018-10": 4,
}  # fmt: skip
COLLAPSE = _ts("2018-09-01 00:00:00")
LAST_PURCHASE = _ts("2018-10-17 17:30:18")
FIRST_PURCHASE = _ts("2016-09-04 21:15:19")
DATA_END = _ts("2018-10-17 23:59:59")

REAL_ORDERS = 99_441
REAL_CUSTOMERS = 96_096
REAL_PRODUCTS = 32_951
REAL_SELLERS = 3_095
REAL_GEO_ROWS = 1_000_163
REAL_GEO_PREFIXES = 19_015

# state: (customer share %, seller share %, zip range start, end, lat, lng, cities)
STATES: dict[str, tuple[float, float, int, int, float, float, tuple[str, ...]]] = {
    "SP": (41.98, 59.7, 1000, 19999, -23.2, -47.3,
           ("sao paulo", "campinas", "guarulhos", "sao bernardo do campo", "santo andre",
            "osasco", "santos", "ribeirao preto", "sorocaba", "franca", "mogi das cruzes")),
    "RJ": (12.92, 5.5, 20000, 28999, -22.6, -43.2,
           ("rio de janeiro", "niteroi", "nova iguacu", "duque de caxias", "sao goncalo")),
    "MG": (11.70, 7.9, 30000, 39999, -19.6, -44.2,
           ("belo horizonte", "juiz de fora", "uberlandia", "contagem", "betim")),
    "RS": (5.50, 4.2, 90000, 99999, -29.8, -51.8,
           ("porto alegre", "caxias do sul", "canoas", "pelotas", "santa maria")),
    "PR": (5.07, 11.3, 80000, 87999, -25.0, -50.8,
           ("curitiba", "londrina", "maringa", "ponta grossa", "cascavel")),
    "SC": (3.66, 6.1, 88000, 89999, -27.3, -49.6,
           ("florianopolis", "joinville", "blumenau", "itajai", "sao jose")),
    "BA": (3.40, 0.6, 40000, 48999, -12.9, -40.2, ("salvador", "feira de santana", "ilheus")),
    "DF": (2.15, 1.0, 70000, 72799, -15.8, -47.9, ("brasilia", "taguatinga")),
    "ES": (2.04, 0.8, 29000, 29999, -20.0, -40.5, ("vitoria", "vila velha", "serra")),
    "GO": (2.03, 1.3, 72800, 76799, -16.6, -49.3, ("goiania", "anapolis")),
    "PE": (1.66, 0.3, 50000, 56999, -8.1, -35.5, ("recife", "olinda", "jaboatao dos guararapes")),
    "CE": (1.34, 0.4, 60000, 63999, -3.8, -38.6, ("fortaleza", "caucaia")),
    "PA": (0.98, 0.1, 66000, 68899, -1.4, -48.5, ("belem", "ananindeua")),
    "MT": (0.91, 0.1, 78000, 78899, -15.6, -56.1, ("cuiaba", "varzea grande")),
    "MA": (0.75, 0.1, 65000, 65999, -2.5, -44.3, ("sao luis", "imperatriz")),
    "MS": (0.72, 0.2, 79000, 79999, -20.5, -54.6, ("campo grande", "dourados")),
    "PB": (0.54, 0.2, 58000, 58999, -7.1, -34.9, ("joao pessoa", "campina grande")),
    "PI": (0.50, 0.05, 64000, 64999, -5.1, -42.8, ("teresina",)),
    "RN": (0.49, 0.2, 59000, 59999, -5.8, -35.2, ("natal", "mossoro")),
    "AL": (0.42, 0.05, 57000, 57999, -9.7, -35.7, ("maceio",)),
    "SE": (0.35, 0.05, 49000, 49999, -10.9, -37.1, ("aracaju",)),
    "TO": (0.28, 0.05, 77000, 77999, -10.2, -48.3, ("palmas",)),
    "RO": (0.25, 0.05, 76800, 76999, -8.8, -63.9, ("porto velho",)),
    "AM": (0.15, 0.05, 69000, 69299, -3.1, -60.0, ("manaus",)),
    "AC": (0.08, 0.0, 69900, 69999, -9.97, -67.8, ("rio branco",)),
    "AP": (0.07, 0.0, 68900, 68999, 0.03, -51.1, ("macapa",)),
    "RR": (0.05, 0.0, 69300, 69399, 2.8, -60.7, ("boa vista",)),
}  # fmt: skip
STATE_NAMES = tuple(STATES)
CITY_OFFSET = np.cumsum([0] + [len(STATES[s][6]) for s in STATE_NAMES])[:-1]
# every city name, state by state; the accented spelling last (geolocation only)
CITIES = (*(c for s in STATE_NAMES for c in STATES[s][6]), "são paulo")
# Extra delay (days) and slower delivery where the real late rate is high.
STATE_DELAY = {"AL": 6.5, "MA": 5.5, "PI": 4.5, "CE": 4.3, "SE": 4.3, "BA": 3.8, "RJ": 3.8,
               "PA": 3.0, "RR": 3.0, "AM": 2.0, "AP": 2.0, "ES": 2.5, "SP": -2.0}  # fmt: skip

STATUS = ("delivered", "shipped", "canceled", "unavailable", "invoiced", "processing",
          "created", "approved")  # fmt: skip
STATUS_P = np.array([96478, 1107, 625, 609, 314, 301, 5, 2], dtype=float)
PAYMENT_TYPES = ("credit_card", "boleto", "voucher", "debit_card", "not_defined")
SCORE_P = {  # P(score 1..5) by delivery experience
    "on_time": np.array([0.068, 0.024, 0.075, 0.205, 0.628]),
    "late": np.array([0.46, 0.10, 0.12, 0.11, 0.21]),
    "undelivered": np.array([0.58, 0.09, 0.10, 0.07, 0.16]),
}
MESSAGE_P = np.array([0.765, 0.681, 0.435, 0.312, 0.359])  # P(message | score 1..5)
GOOD_MESSAGES = (
    "Recebi bem antes do prazo estipulado.",
    "Parabéns lojas lannister adorei comprar pela Internet seguro e prático "
    "Parabéns a todos feliz Páscoa",
    "aparelho eficiente. no site a marca do aparelho esta impresso como 3desinfector e ao "
    "chegar esta com outro nome...atualizar com a marca correta uma vez que é o mesmo aparelho",
    "Mas um pouco ,travando...pelo valor ta Boa.\r\n",
    "Vendedor confiável, produto ok e entrega antes do prazo.",
    "Produto excelente, recomendo!",
    "Muito bom, chegou rápido.",
    "Ótimo produto, exatamente como o anúncio.",
    "A compra foi realizada facilmente.\r\nA entrega foi efetuada muito antes do prazo dado."
    "\r\nO produto já começou a ser usado e até o presente,\r\nsem problemas.",
    "Tudo certo, obrigado",
    'Produto "top", super indico',
)  # fmt: skip
BAD_MESSAGES = (
    "Não recebi o produto até agora.",
    "Produto veio com defeito, quero devolver.",
    "Comprei dois e recebi apenas um.\r\nAguardando retorno da loja.",
    "péssimo, atrasou muito",
    "O produto não foi entregue e ninguém responde",
    "Veio diferente do anúncio, cor errada",
)  # fmt: skip
TITLES = ("recomendo", "Muito bom", "Excelente", "ótimo", "Super recomendo", "Ruim",
          "Não recebi", "Bom", "Produto com defeito")  # fmt: skip
# the purchase weekday (Mon..Sun) and hour (four blocks of six hours) profiles, as weights
DOW_W = np.array([16.3, 16.1, 15.6, 14.8, 14.2, 10.95, 12.0])  # Mon..Sun
HOUR_W = np.repeat(np.array([4740, 22240, 38361, 34100]) / 6.0, 6)

CATEGORY_TRANSLATION: tuple[tuple[str, str], ...] = (
    ("beleza_saude", "health_beauty"),
    ("informatica_acessorios", "computers_accessories"),
    ("automotivo", "auto"),
    ("cama_mesa_banho", "bed_bath_table"),
    ("moveis_decoracao", "furniture_decor"),
    ("esporte_lazer", "sports_leisure"),
    ("perfumaria", "perfumery"),
    ("utilidades_domesticas", "housewares"),
    ("telefonia", "telephony"),
    ("relogios_presentes", "watches_gifts"),
    ("alimentos_bebidas", "food_drink"),
    ("bebes", "baby"),
    ("papelaria", "stationery"),
    ("tablets_impressao_imagem", "tablets_printing_image"),
    ("brinquedos", "toys"),
    ("telefonia_fixa", "fixed_telephony"),
    ("ferramentas_jardim", "garden_tools"),
    ("fashion_bolsas_e_acessorios", "fashion_bags_accessories"),
    ("eletroportateis", "small_appliances"),
    ("consoles_games", "consoles_games"),
    ("audio", "audio"),
    ("fashion_calcados", "fashion_shoes"),
    ("cool_stuff", "cool_stuff"),
    ("malas_acessorios", "luggage_accessories"),
    ("climatizacao", "air_conditioning"),
    ("construcao_ferramentas_construcao", "construction_tools_construction"),
    ("moveis_cozinha_area_de_servico_jantar_e_jardim", "kitchen_dining_laundry_garden_furniture"),
    ("construcao_ferramentas_jardim", "costruction_tools_garden"),
    ("fashion_roupa_masculina", "fashion_male_clothing"),
    ("pet_shop", "pet_shop"),
    ("moveis_escritorio", "office_furniture"),
    ("market_place", "market_place"),
    ("eletronicos", "electronics"),
    ("eletrodomesticos", "home_appliances"),
    ("artigos_de_festas", "party_supplies"),
    ("casa_conforto", "home_confort"),
    ("construcao_ferramentas_ferramentas", "costruction_tools_tools"),
    ("agro_industria_e_comercio", "agro_industry_and_commerce"),
    ("moveis_colchao_e_estofado", "furniture_mattress_and_upholstery"),
    ("livros_tecnicos", "books_technical"),
    ("casa_construcao", "home_construction"),
    ("instrumentos_musicais", "musical_instruments"),
    ("moveis_sala", "furniture_living_room"),
    ("construcao_ferramentas_iluminacao", "construction_tools_lights"),
    ("industria_comercio_e_negocios", "industry_commerce_and_business"),
    ("alimentos", "food"),
    ("artes", "art"),
    ("moveis_quarto", "furniture_bedroom"),
    ("livros_interesse_geral", "books_general_interest"),
    ("construcao_ferramentas_seguranca", "construction_tools_safety"),
    ("fashion_underwear_e_moda_praia", "fashion_underwear_beach"),
    ("fashion_esporte", "fashion_sport"),
    ("sinalizacao_e_seguranca", "signaling_and_security"),
    ("pcs", "computers"),
    ("artigos_de_natal", "christmas_supplies"),
    ("fashion_roupa_feminina", "fashio_female_clothing"),
    ("eletrodomesticos_2", "home_appliances_2"),
    ("livros_importados", "books_imported"),
    ("bebidas", "drinks"),
    ("cine_foto", "cine_photo"),
    ("la_cuisine", "la_cuisine"),
    ("musica", "music"),
    ("casa_conforto_2", "home_comfort_2"),
    ("portateis_casa_forno_e_cafe", "small_appliances_home_oven_and_coffee"),
    ("cds_dvds_musicais", "cds_dvds_musicals"),
    ("dvds_blu_ray", "dvds_blu_ray"),
    ("flores", "flowers"),
    ("artes_e_artesanato", "arts_and_craftmanship"),
    ("fraldas_higiene", "diapers_and_hygiene"),
    ("fashion_roupa_infanto_juvenil", "fashion_childrens_clothes"),
    ("seguros_e_servicos", "security_and_services"),
)

# Categories in use but absent from the translation file.
UNTRANSLATED = ("pc_gamer", "portateis_cozinha_e_preparadores_de_alimentos")

PRODUCTS_PER_CATEGORY: dict[str, int] = {
    "cama_mesa_banho": 3029,
    "esporte_lazer": 2867,
    "moveis_decoracao": 2657,
    "beleza_saude": 2444,
    "utilidades_domesticas": 2335,
    "automotivo": 1900,
    "informatica_acessorios": 1639,
    "brinquedos": 1411,
    "relogios_presentes": 1329,
    "telefonia": 1134,
    "bebes": 919,
    "perfumaria": 868,
    "papelaria": 849,
    "fashion_bolsas_e_acessorios": 849,
    "cool_stuff": 789,
    "ferramentas_jardim": 753,
    "pet_shop": 719,
    "eletronicos": 517,
    "construcao_ferramentas_construcao": 400,
    "eletrodomesticos": 370,
    "malas_acessorios": 349,
    "consoles_games": 317,
    "moveis_escritorio": 309,
    "instrumentos_musicais": 289,
    "eletroportateis": 231,
    "casa_construcao": 225,
    "livros_interesse_geral": 216,
    "fashion_calcados": 173,
    "moveis_sala": 156,
    "climatizacao": 124,
    "livros_tecnicos": 123,
    "telefonia_fixa": 116,
    "casa_conforto": 111,
    "market_place": 104,
    "alimentos_bebidas": 104,
    "fashion_roupa_masculina": 95,
    "moveis_cozinha_area_de_servico_jantar_e_jardim": 94,
    "sinalizacao_e_seguranca": 93,
    "construcao_ferramentas_seguranca": 91,
    "eletrodomesticos_2": 90,
    "construcao_ferramentas_jardim": 88,
    "alimentos": 82,
    "bebidas": 81,
    "construcao_ferramentas_iluminacao": 78,
    "agro_industria_e_comercio": 74,
    "industria_comercio_e_negocios": 68,
    "artigos_de_natal": 65,
    "audio": 58,
    "artes": 55,
    "fashion_underwear_e_moda_praia": 53,
    "dvds_blu_ray": 48,
    "moveis_quarto": 45,
    "construcao_ferramentas_ferramentas": 39,
    "livros_importados": 31,
    "portateis_casa_forno_e_cafe": 31,
    "pcs": 30,
    "cine_foto": 28,
    "fashion_roupa_feminina": 27,
    "musica": 27,
    "artigos_de_festas": 26,
    "fashion_esporte": 19,
    "artes_e_artesanato": 19,
    "flores": 14,
    "fraldas_higiene": 12,
    "la_cuisine": 10,
    "portateis_cozinha_e_preparadores_de_alimentos": 10,
    "moveis_colchao_e_estofado": 10,
    "tablets_impressao_imagem": 9,
    "fashion_roupa_infanto_juvenil": 5,
    "casa_conforto_2": 5,
    "pc_gamer": 3,
    "seguros_e_servicos": 2,
    "cds_dvds_musicais": 1,
}
