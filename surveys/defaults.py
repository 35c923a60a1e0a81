"""The default wording of surveys, per kind (``nps``, ``enps``) and respondent language.

``DEFAULT_TEXTS[kind][language][key]``. A survey may override the keys in
``EDITABLE_TEXT_KEYS`` per language (``Survey.texts``); anything it leaves blank comes from
here (``surveys.selectors.survey_text``). ``{company}`` stands for the company's name;
``{name}`` (greeting only) for the respondent's name.

These are respondent-facing texts in the respondent's language, not the app's interface, so
they are written out per language here rather than going through gettext (the app's UI has
no Kazakh catalogue, respondents do get Kazakh).

The Russian texts say "компания {company}" where the name would otherwise need a case ending
that a placeholder cannot take; the Kazakh ones attach the suffix to «компания» for the same
reason («{company} компаниясын», «компаниясының»).
"""

from __future__ import annotations

from typing import Final

LANGUAGES: Final = ("en", "ru", "kk")
KINDS: Final = ("nps", "enps")

# What a survey's editor may reword, per language, in this order on the form.
EDITABLE_TEXT_KEYS: Final = (
    "question",
    "why_promoter",
    "why_passive",
    "why_detractor",
    "thanks",
    "promoter_invite",
    "promoter_button",
    "email_subject",
    "email_intro",
    "reminder_subject",
)

# Upper bounds on the editable texts' lengths (characters).
TEXT_MAX_LENGTH: Final = {
    "question": 300,
    "promoter_button": 60,
    "email_subject": 150,
    "reminder_subject": 150,
}
TEXT_DEFAULT_MAX_LENGTH: Final = 1000

# Respondent-page and email strings shared by both kinds.
_COMMON: dict[str, dict[str, str]] = {
    "en": {
        "scale_low": "0 = not at all likely",
        "scale_high": "10 = extremely likely",
        "email_greeting": "Hi {name},",
        "email_greeting_anonymous": "Hello,",
        "email_link": "Buttons not working? Answer on the web:",
        "email_reminder_intro": (
            "A few days ago we asked you one quick question. If you have a minute, "
            "we would still love to hear from you."
        ),
        "email_answer": "Answer the survey",
        "footer_unsubscribe": "Unsubscribe",
        "comment_placeholder": "Tell us in your own words (optional)",
        "submit": "Send",
        "optional": "optional",
        "score_saved": "Thank you, your score is saved.",
        "change_score": "You can change your score or comment at any time.",
        "anonymous_note": "Your answer is anonymous: your name is never shown with it.",
        "extra_title": "A few more questions (optional)",
    },
    "ru": {
        "scale_low": "0 — совсем маловероятно",
        "scale_high": "10 — очень вероятно",
        "email_greeting": "Здравствуйте, {name}!",
        "email_greeting_anonymous": "Здравствуйте!",
        "email_link": "Кнопки не работают? Ответьте по ссылке:",
        "email_reminder_intro": (
            "Несколько дней назад мы задали вам один короткий вопрос. Если у вас есть "
            "минута, нам всё ещё очень важен ваш ответ."
        ),
        "email_answer": "Ответить на вопрос",
        "footer_unsubscribe": "Отписаться",
        "comment_placeholder": "Расскажите своими словами (необязательно)",
        "submit": "Отправить",
        "optional": "необязательно",
        "score_saved": "Спасибо, ваша оценка сохранена.",
        "change_score": "Оценку и комментарий можно изменить в любой момент.",
        "anonymous_note": "Ваш ответ анонимен: ваше имя никогда не показывается рядом с ним.",
        "extra_title": "Ещё несколько вопросов (необязательно)",
    },
    "kk": {
        "scale_low": "0 — мүлдем ықтимал емес",
        "scale_high": "10 — өте ықтимал",
        "email_greeting": "Сәлеметсіз бе, {name}!",
        "email_greeting_anonymous": "Сәлеметсіз бе!",
        "email_link": "Батырмалар жұмыс істемей ме? Мына сілтеме арқылы жауап беріңіз:",
        "email_reminder_intro": (
            "Бірнеше күн бұрын біз сізге бір қысқа сұрақ қойдық. Бір минут уақытыңыз "
            "болса, жауабыңызды әлі де күтеміз."
        ),
        "email_answer": "Сұраққа жауап беру",
        "footer_unsubscribe": "Жазылымнан бас тарту",
        "comment_placeholder": "Өз сөзіңізбен жазыңыз (міндетті емес)",
        "submit": "Жіберу",
        "optional": "міндетті емес",
        "score_saved": "Рахмет, бағаңыз сақталды.",
        "change_score": "Бағаңызды немесе пікіріңізді кез келген уақытта өзгерте аласыз.",
        "anonymous_note": "Жауабыңыз анонимді: сіздің атыңыз онымен бірге ешқашан көрсетілмейді.",
        "extra_title": "Тағы бірнеше сұрақ (міндетті емес)",
    },
}

_NPS: dict[str, dict[str, str]] = {
    "en": {
        "question": "How likely are you to recommend {company} to a friend or colleague?",
        "why_promoter": "Great to hear! What do you like most about {company}?",
        "why_passive": "Thank you! What could {company} do to earn a 10 from you?",
        "why_detractor": (
            "We are sorry to hear that. What disappointed you, and what should {company} "
            "improve first?"
        ),
        "thanks": "Thank you for your feedback! It helps {company} get better.",
        "promoter_invite": (
            "Would you share your experience? A review helps others find {company}."
        ),
        "promoter_button": "Leave a review",
        "email_subject": "A quick question from {company}",
        "email_intro": (
            "We would love to know how we are doing. It takes one click: choose a number below."
        ),
        "reminder_subject": "Reminder: one quick question from {company}",
        "footer_reason": "You are receiving this email because you are a customer of {company}.",
    },
    "ru": {
        "question": "Насколько вероятно, что вы порекомендуете {company} другу или коллеге?",
        "why_promoter": "Рады это слышать! Что вам больше всего нравится в компании {company}?",
        "why_passive": "Спасибо! Что нам сделать, чтобы вы поставили 10?",
        "why_detractor": (
            "Нам жаль это слышать. Что вас разочаровало и что нам стоит исправить в первую очередь?"
        ),
        "thanks": "Спасибо за отзыв! Он помогает компании {company} становиться лучше.",
        "promoter_invite": (
            "Поделитесь впечатлениями: ваш отзыв поможет другим узнать о компании {company}."
        ),
        "promoter_button": "Оставить отзыв",
        "email_subject": "Один короткий вопрос от компании {company}",
        "email_intro": (
            "Нам важно знать, как у нас получается. Ответ займёт один клик: выберите оценку ниже."
        ),
        "reminder_subject": "Напоминание: один короткий вопрос от компании {company}",
        "footer_reason": "Вы получили это письмо, потому что вы клиент компании {company}.",
    },
    "kk": {
        "question": (
            "{company} компаниясын досыңызға немесе әріптесіңізге ұсыну ықтималдығыңыз қандай?"
        ),
        "why_promoter": "Қуаныштымыз! {company} компаниясының сізге ең ұнайтын тұсы қандай?",
        "why_passive": "Рахмет! Сіз 10 балл қоюыңыз үшін біз не істеуіміз керек?",
        "why_detractor": (
            "Өкінішті. Сізге не ұнамады және {company} компаниясы ең алдымен нені жақсартуы керек?"
        ),
        "thanks": "Пікіріңізге рахмет! Ол {company} компаниясына жақсаруға көмектеседі.",
        "promoter_invite": (
            "Тәжірибеңізбен бөлісіңіз: пікіріңіз басқаларға {company} компаниясын табуға "
            "көмектеседі."
        ),
        "promoter_button": "Пікір қалдыру",
        "email_subject": "{company} компаниясынан бір қысқа сұрақ",
        "email_intro": (
            "Жұмысымыз туралы пікіріңізді білгіміз келеді. Бір ғана басу жеткілікті: "
            "төмендегі бағалардың бірін таңдаңыз."
        ),
        "reminder_subject": "Еске салу: {company} компаниясынан бір қысқа сұрақ",
        "footer_reason": "Сіз бұл хатты {company} компаниясының клиенті болғандықтан алдыңыз.",
    },
}

_ENPS: dict[str, dict[str, str]] = {
    "en": {
        "question": "How likely are you to recommend {company} as a place to work?",
        "why_promoter": "Great to hear! What do you value most about working at {company}?",
        "why_passive": "Thank you! What would make {company} an even better place to work?",
        "why_detractor": (
            "Thank you for being honest. What should {company} change first to make work "
            "better for you?"
        ),
        "thanks": (
            "Thank you! Your answer is anonymous and helps make {company} a better place to work."
        ),
        "promoter_invite": ("Know someone who would enjoy working at {company}? Refer a friend."),
        "promoter_button": "Refer a friend",
        "email_subject": "How is work at {company}? One anonymous question",
        "email_intro": (
            "Your answer is anonymous: your name is never shown with it. Choose a number below."
        ),
        "reminder_subject": "Reminder: one anonymous question about working at {company}",
        "footer_reason": "You are receiving this email because you work at {company}.",
    },
    "ru": {
        "question": "Насколько вероятно, что вы порекомендуете {company} как место работы?",
        "why_promoter": (
            "Рады это слышать! Что вы больше всего цените в работе в компании {company}?"
        ),
        "why_passive": "Спасибо! Что сделало бы компанию {company} ещё лучшим местом работы?",
        "why_detractor": (
            "Спасибо за честность. Что компании {company} стоит изменить в первую очередь, "
            "чтобы вам было лучше работать?"
        ),
        "thanks": (
            "Спасибо! Ваш ответ анонимен и помогает сделать работу в компании {company} лучше."
        ),
        "promoter_invite": (
            "Знаете кого-то, кому понравится работать в компании {company}? Порекомендуйте друга."
        ),
        "promoter_button": "Порекомендовать друга",
        "email_subject": "Как вам работается в компании {company}? Один анонимный вопрос",
        "email_intro": (
            "Ваш ответ анонимен: ваше имя никогда не показывается рядом с ним. "
            "Выберите оценку ниже."
        ),
        "reminder_subject": "Напоминание: один анонимный вопрос о работе в компании {company}",
        "footer_reason": "Вы получили это письмо, потому что работаете в компании {company}.",
    },
    "kk": {
        "question": "{company} компаниясын жұмыс орны ретінде ұсыну ықтималдығыңыз қандай?",
        "why_promoter": (
            "Қуаныштымыз! {company} компаниясында жұмыс істеудің сіз үшін ең құнды жағы қандай?"
        ),
        "why_passive": (
            "Рахмет! {company} компаниясын одан да жақсы жұмыс орнына айналдыру үшін не "
            "өзгерту керек?"
        ),
        "why_detractor": (
            "Ашық пікіріңізге рахмет. Сізге жұмыс істеу жайлы болуы үшін {company} "
            "компаниясы ең алдымен нені өзгертуі керек?"
        ),
        "thanks": (
            "Рахмет! Жауабыңыз анонимді және {company} компаниясындағы жұмысты жақсартуға "
            "көмектеседі."
        ),
        "promoter_invite": (
            "{company} компаниясында жұмыс істегісі келетін танысыңыз бар ма? Досыңызды ұсыныңыз."
        ),
        "promoter_button": "Досыңызды ұсыну",
        "email_subject": "{company} компаниясындағы жұмысыңыз қалай? Бір анонимді сұрақ",
        "email_intro": (
            "Жауабыңыз анонимді: сіздің атыңыз онымен бірге ешқашан көрсетілмейді. "
            "Төменнен бағаны таңдаңыз."
        ),
        "reminder_subject": (
            "Еске салу: {company} компаниясындағы жұмыс туралы бір анонимді сұрақ"
        ),
        "footer_reason": "Сіз бұл хатты {company} компаниясында жұмыс істейтіндіктен алдыңыз.",
    },
}

DEFAULT_TEXTS: Final[dict[str, dict[str, dict[str, str]]]] = {
    "nps": {lang: {**_COMMON[lang], **_NPS[lang]} for lang in LANGUAGES},
    "enps": {lang: {**_COMMON[lang], **_ENPS[lang]} for lang in LANGUAGES},
}

TEXT_KEYS: Final = frozenset(DEFAULT_TEXTS["nps"]["en"])


def default_text(*, kind: str, language: str, key: str) -> str:
    """The default wording (placeholders not filled in); unknown kind/language → nps/en."""
    texts = DEFAULT_TEXTS.get(kind, DEFAULT_TEXTS["nps"])
    return texts.get(language, texts["en"])[key]


# --- SMS and WhatsApp -------------------------------------------------------------------------
#
# The texts of the SMS conversation, per respondent language. ``{company}``, ``{name}``,
# ``{question}`` (the survey's question) and ``{link}`` (the answer page, a fallback) are
# filled in by ``surveys.sms``. The English ones keep to the GSM-7 alphabet (plain quotes and
# hyphens), so that an English invitation is not silently sent as UCS-2 (70 characters per
# segment instead of 160); Russian and Kazakh are UCS-2 in any case.

SMS_TEXTS: Final[dict[str, dict[str, str]]] = {
    "en": {
        "invitation": (
            "{company}: Hi {name}! {question} Reply with a number from 0 to 10. "
            "Or answer here: {link} Reply STOP to opt out."
        ),
        "invitation_anonymous": (
            "{company}: {question} Reply with a number from 0 to 10. "
            "Or answer here: {link} Reply STOP to opt out."
        ),
        "help_score": "Please reply with a number from 0 to 10. Reply STOP to opt out.",
        "no_invitation": (
            "{company}: thank you for your message. There is no open survey to answer."
        ),
        "stopped": (
            "{company}: you will receive no more messages from us. Reply START to opt back in."
        ),
        "started": "{company}: you will receive our messages again. Reply STOP to opt out.",
        "help": (
            "{company} surveys: reply with a number from 0 to 10 to answer. Reply STOP to opt out."
        ),
    },
    "ru": {
        "invitation": (
            "{company}: Здравствуйте, {name}! {question} Ответьте числом от 0 до 10. "
            "Или ответьте здесь: {link} Чтобы отписаться, ответьте СТОП."
        ),
        "invitation_anonymous": (
            "{company}: {question} Ответьте числом от 0 до 10. "
            "Или ответьте здесь: {link} Чтобы отписаться, ответьте СТОП."
        ),
        "help_score": "Пожалуйста, ответьте числом от 0 до 10. Чтобы отписаться, ответьте СТОП.",
        "no_invitation": "{company}: спасибо за сообщение. Открытых опросов для ответа нет.",
        "stopped": (
            "{company}: вы больше не будете получать от нас сообщения. "
            "Чтобы снова подписаться, ответьте СТАРТ."
        ),
        "started": "{company}: вы снова подписаны. Чтобы отписаться, ответьте СТОП.",
        "help": (
            "Опросы компании {company}: ответьте числом от 0 до 10. "
            "Чтобы отписаться, ответьте СТОП."
        ),
    },
    "kk": {
        "invitation": (
            "{company}: Сәлеметсіз бе, {name}! {question} 0-ден 10-ға дейінгі санмен "
            "жауап беріңіз. Немесе осында жауап беріңіз: {link} Жазылымнан бас тарту үшін "
            "СТОП деп жауап беріңіз."
        ),
        "invitation_anonymous": (
            "{company}: {question} 0-ден 10-ға дейінгі санмен жауап беріңіз. "
            "Немесе осында жауап беріңіз: {link} Жазылымнан бас тарту үшін СТОП деп "
            "жауап беріңіз."
        ),
        "help_score": (
            "0-ден 10-ға дейінгі санмен жауап беріңіз. Жазылымнан бас тарту үшін СТОП деп "
            "жауап беріңіз."
        ),
        "no_invitation": "{company}: хабарламаңызға рахмет. Жауап беретін ашық сауалнама жоқ.",
        "stopped": (
            "{company}: сіз бізден бұдан былай хабарлама алмайсыз. Қайта жазылу үшін СТАРТ "
            "деп жауап беріңіз."
        ),
        "started": (
            "{company}: сіз қайта жазылдыңыз. Жазылымнан бас тарту үшін СТОП деп жауап беріңіз."
        ),
        "help": (
            "{company} сауалнамалары: 0-ден 10-ға дейінгі санмен жауап беріңіз. Жазылымнан "
            "бас тарту үшін СТОП деп жауап беріңіз."
        ),
    },
}


def sms_text(*, language: str, key: str) -> str:
    """One SMS conversation text (placeholders not filled in); unknown language → en."""
    return SMS_TEXTS.get(language, SMS_TEXTS["en"])[key]
