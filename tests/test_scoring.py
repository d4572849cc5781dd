"""The scorer's log-probs are the model's own: its final-logit processing (Gemma-2 soft-capping)
is applied, as in a plain forward pass (SELFEE labels and the on-policy filter depend on it)."""

import torch

from selfpref.models.scoring import answer_logps, answer_token_ids

PROMPTS = [[{"role": "user", "content": "hi there"}],
           [{"role": "user", "content": "a much longer question about gardens"}]]
ANSWERS = ["hello friend, how are you", "ok"]


def _plain_forward_logps(model, tokenizer):
    out = []
    for prompt, answer in zip(PROMPTS, ANSWERS):
        full, n = answer_token_ids(tokenizer, prompt, answer)
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=torch.tensor([full])).logits[0].float(), -1)
        out.append(sum(logp[t - 1, full[t]].item() for t in range(n, len(full))))
    return out


def test_scorer_keeps_gemma2_soft_capping(default_model_path):
    from transformers import AutoTokenizer, Gemma2Config, Gemma2ForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(default_model_path)
    config = Gemma2Config(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                          num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                          head_dim=16, final_logit_softcapping=0.5,
                          pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    model = Gemma2ForCausalLM(config).eval()
    with torch.no_grad():
        model.lm_head.weight.mul_(50)  # logits large enough for the cap to bite
    expected = _plain_forward_logps(model, tokenizer)
    got, counts = answer_logps(model, tokenizer, PROMPTS, ANSWERS)
    assert all(c > 0 for c in counts)
    assert torch.allclose(torch.tensor(got), torch.tensor(expected), atol=1e-3)
    # the cap matters: the bare decoder + head (what the scorer did before) scores differently
    full, n = answer_token_ids(tokenizer, PROMPTS[0], ANSWERS[0])
    with torch.no_grad():
        hidden = model.get_decoder()(input_ids=torch.tensor([full])).last_hidden_state
        raw = torch.log_softmax(model.lm_head(hidden)[0].float(), -1)
    uncapped = sum(raw[t - 1, full[t]].item() for t in range(n, len(full)))
    assert abs(uncapped - expected[0]) > 1.0


def test_scorer_equals_plain_forward_on_llama(tiny_model_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_path)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_path).eval()
    got, _ = answer_logps(model, tokenizer, PROMPTS, ANSWERS, batch_size=2)
    assert torch.allclose(torch.tensor(got), torch.tensor(_plain_forward_logps(model, tokenizer)),
                          atol=1e-3)
