from surveys.tokens import looks_like_token, new_nonce, token_for, token_hash


def test_token_is_stable_for_a_nonce_and_differs_between_nonces(settings):
    nonce = new_nonce()
    assert token_for(nonce) == token_for(nonce)
    assert token_for(nonce) != token_for(new_nonce())
    assert looks_like_token(token_for(nonce))
    assert len(token_hash(token_for(nonce))) == 64


def test_token_depends_on_the_secret(settings):
    nonce = new_nonce()
    before = token_for(nonce)
    settings.SECRET_KEY = "another-secret-key-for-this-test-only"
    assert token_for(nonce) != before


def test_shape_check_rejects_junk():
    assert not looks_like_token("short")
    assert not looks_like_token("x" * 42 + "!")
