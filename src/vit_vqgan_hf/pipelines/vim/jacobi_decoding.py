# Copyright 2026 The vit-vqgan-hf Authors. Licensed under the Apache License, Version 2.0.
"""`VimPipeline`'s second token loop: speculative Jacobi decoding, several image tokens per transformer call with the
output distribution of sequential sampling.

Teng et al., "Accelerating Auto-regressive Text-to-Image Generation with Training-free Speculative Jacobi Decoding"
(arXiv 2410.01699): each call feeds the last accepted token and a window of draft tokens over the cached prefix, and
gets the model's distribution at every window position at once. A draft drawn from a distribution `q` is accepted
with probability `min(1, p / q)` under the model's (processed) distribution `p` there; at the first rejection the token
is drawn from the normalized residual `max(0, p - q)` (Leviathan et al., 2023, speculative sampling), and when every
draft is accepted the position after them is sampled from its `p`. Every token therefore follows `p` given the tokens
before it, exactly as in sequential sampling. The predictions past the accepted run, made from rejected context, become
the next drafts (the Jacobi iteration); positions no prediction reached yet are drafted as the token above them in the
grid, which raster order has already sampled (a one-hot `q`; uniform on the first row).

Most calls end at their first draft: its prediction was made after a draft that the previous call rejected. Branches
(`num_branches`) give that position more than one continuation: the call also reads the most probable other tokens of
the first draft's `q`, each after the last accepted token only (a tree attention mask; their keys and values go to
spare cache slots past the window). When the first draft is rejected and the token drawn from the residual is one of
them, that branch's prediction of the next position is exact, so the next token is sampled from it in the same call.
Which tokens are sampled, and from what, is unchanged: the branches only add a second token to some calls.
"""

import torch

from .preallocated_cache import RowwiseCache


# Tokens per transformer call at most (the last accepted token and `window - 1` drafts). Measured on the digits demo's
# VIM and a photo-tile VIM (8x8 and 16x16 tokens, temperature 1): the fastest or tied at batch 1, see the README.
DEFAULT_JACOBI_WINDOW = 8
# Alternative tokens of each call's first draft (see the module docstring), with windows of 3 or more. On a CPU, with
# the digits and photo VIMs of the README, 7 branches take 8-12% fewer calls at window 8, but each call reads 15 tokens
# instead of 8 and the wall-clock time grows at every batch size (the README's table): none by default. They can pay
# only where a call costs the same whatever its number of tokens.
DEFAULT_JACOBI_BRANCHES = 0


class VimJacobiDecodingMixin:
    """
    [`VimPipeline`]'s speculative Jacobi token loop, `generate_tokens_jacobi`. It shares the pipeline's prompt, guidance,
    logits processing, sampling and callback code (`prepare_prompt`, `guide`, `sampling_probabilities`, `sample_from`,
    `run_step_callback`) with the sequential loop, `generate_tokens`.
    """

    @staticmethod
    def jacobi_draws_per_token(window: int) -> int:
        """Random numbers drawn up front per image token (one set per call): the token sampled from `p` or from the
        residual, the acceptance tests of `window - 1` drafts, and those drafts. 1 for `window=1`, sequential sampling."""
        return 2 * window - 1

    @staticmethod
    def jacobi_num_branches(window: int, num_branches: int | None, codebook_size: int | None = None) -> int:
        """
        The branches a call reads: `DEFAULT_JACOBI_BRANCHES` for `None`, none for windows under 3 (the token sampled
        after a branch uses the acceptance number of the window's second draft), and at most `codebook_size - 1`, the
        other tokens there are (no bound for `None`).
        """
        num_branches = DEFAULT_JACOBI_BRANCHES if num_branches is None else num_branches
        if window < 3:
            return 0
        return num_branches if codebook_size is None else min(num_branches, codebook_size - 1)

    def prepare_jacobi_cache(
        self, batch_size: int, num_inputs: int, cache_implementation: str, device
    ) -> RowwiseCache:
        """A cache in which each image keeps its own number of tokens, with room for one call's inputs past the
        sequence."""
        config = self.transformer.config
        head_dim = config.hidden_size // config.num_attention_heads
        max_length = config.max_position_embeddings + num_inputs
        return RowwiseCache(
            config.num_hidden_layers,
            max_length,
            batch_size,
            config.num_attention_heads,
            head_dim,
            self.transformer.dtype,
            device,
        )

    def jacobi_new_drafts(self, image_tokens: torch.LongTensor, positions: torch.LongTensor) -> torch.Tensor:
        """
        The draft distributions `(batch_size, num_positions, codebook_size)` of image positions no prediction reached:
        one-hot on the token above (raster order has sampled it; a stale value if the window is wider than a row,
        which is still a valid draft), uniform on the first row.
        """
        grid, codebook_size = self.token_grid_size, self.transformer.config.codebook_size
        above = image_tokens.gather(1, (positions - grid).clamp(min=0))
        one_hot = torch.nn.functional.one_hot(above, codebook_size).float()
        return torch.where((positions >= grid)[..., None], one_hot, 1 / codebook_size)

    @staticmethod
    def jacobi_branch_tokens(first_q: torch.Tensor, first_drafts: torch.LongTensor, num_branches: int):
        """The branches of a call, `(batch_size, num_branches)`: the most probable tokens of the first draft's
        distribution `first_q` other than the draft (the likeliest replacements if it is rejected)."""
        return first_q.scatter(1, first_drafts[:, None], -1.0).topk(num_branches, dim=1).indices

    @staticmethod
    def jacobi_attention_mask(slots, last_slots, num_window, key_index, unmasked, masked) -> torch.Tensor:
        """
        The additive mask `(batch_size, 1, num_inputs, key_length)` of a call whose inputs sit at cache `slots`
        `(batch_size, num_inputs)`: the window (the first `num_window` inputs, its first one the last accepted token at
        `last_slots` `(batch_size, 1)`) is causal over the cache; each branch after it sees the cache up to the last
        accepted token, and itself.
        """
        if slots.shape[1] == num_window:  # no branches
            return torch.where(key_index <= slots[:, None, :, None], unmasked, masked)
        is_branch = torch.arange(slots.shape[1], device=slots.device) >= num_window
        visible = key_index <= torch.where(is_branch, last_slots, slots)[:, None, :, None]
        visible |= is_branch[:, None] & (key_index == slots[:, None, :, None])
        return torch.where(visible, unmasked, masked)

    @staticmethod
    def jacobi_residual(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """
        What the token at the first rejected draft is drawn from: `max(0, p - q)` (`sample_from` normalizes it), which
        makes the token follow `p` overall; `p` itself where `p == q`, whose draft is always accepted (up to rounding).
        """
        residual = (p - q).clamp(min=0)
        return torch.where(residual.sum(dim=1, keepdim=True) > 0, residual, p)

    def jacobi_probabilities(self, logits, logits_processor, image_tokens, greedy: bool) -> torch.Tensor:
        """
        The distributions `p` of the window `(batch_size, window, codebook_size)` from its guided float32 logits:
        `logits_processor` then softmax, row by row (transformers' warpers take 2-D scores; the ones the pipeline uses
        do not read the tokens, which are passed per row all the same), or one-hot on the argmax for greedy decoding.
        """
        if greedy:
            return torch.nn.functional.one_hot(logits.argmax(dim=-1), logits.shape[-1]).float()
        if not logits_processor:
            return logits.softmax(dim=-1)
        tokens = image_tokens.repeat_interleave(logits.shape[1], dim=0)
        return self.sampling_probabilities(logits_processor, tokens, logits.flatten(0, 1)).view_as(logits)

    @torch.inference_mode()  # as `generate_tokens`
    def generate_tokens_jacobi(
        self,
        prefix_ids: torch.LongTensor,
        noise: torch.Tensor | None,
        guidance_scale: float,
        logits_processor,
        progress_bar,
        callback_on_step_end=None,
        callback_on_step_end_tensor_inputs=("image_tokens",),
        cache_implementation="preallocated",
        kept_tokens=None,
        window: int = DEFAULT_JACOBI_WINDOW,
        num_branches: int = 0,
    ) -> torch.LongTensor | None:
        r"""
        Sample the image tokens of one batch, `(batch_size, num_image_tokens)`, with speculative Jacobi decoding: the
        arguments and the result are those of `generate_tokens`, `window` tokens at most are accepted per call, and
        `num_branches` alternatives of the first draft are read with it (see `jacobi_num_branches`; 0 for none).

        Each image keeps its own count of accepted tokens, its own key/value cache length and its own random numbers
        (`noise` holds `jacobi_draws_per_token(window)` numbers per token, used one set per call), so an image does not
        depend on its batch. `"static"` caching attends over the whole cache buffer at every call (the same shapes
        for a compiled transformer), `"preallocated"` over the longest image's tokens. `noise=None` decodes greedily
        (the tokens of sequential greedy decoding). The callback runs once per call, with `step` the index of the last
        token every image of the batch has, and `logits` the guided logits of the window `(batch_size, window,
        codebook_size)`. Each call reads the images' token counts back to the host once, to know when to stop.
        """
        use_guidance = guidance_scale > 1
        num_tokens_total, codebook_size = self.num_image_tokens, self.transformer.config.codebook_size
        max_position = self.transformer.config.max_position_embeddings - 1
        num_drafts = window - 1
        image_tokens, input_ids = self.prepare_prompt(prefix_ids, kept_tokens, use_guidance, extra_columns=window)
        batch_size, num_kept = len(image_tokens), input_ids.shape[1] - 1
        device = image_tokens.device
        draws, greedy = self.jacobi_draws_per_token(window), noise is None
        if num_kept == num_tokens_total:
            return image_tokens[:, :num_tokens_total]
        if greedy:  # greedy: one-hot distributions and zero noise accept a draft iff it is the argmax
            noise = torch.zeros(batch_size, num_tokens_total * draws, device=device)
        noise = noise.view(batch_size, num_tokens_total, draws)
        cache = self.prepare_jacobi_cache(len(input_ids), window + num_branches, cache_implementation, device)
        window_index = torch.arange(window, device=device)
        draft_index, key_index = window_index[:num_drafts], torch.arange(cache.layers[0].max_cache_len, device=device)
        # Additive attention mask values; `q` of the window, whose last position never has a draft (`q = 0`).
        dtype = self.transformer.dtype
        unmasked, masked = (
            torch.zeros((), dtype=dtype, device=device),
            torch.tensor(torch.finfo(dtype).min, device=device),
        )
        window_q = torch.zeros(batch_size, window, codebook_size, device=device)

        def next_inputs(known_tokens, drafts, draft_probabilities):
            """A call's input tokens: the known ones, the drafts and the branches (twice with guidance)."""
            inputs = [known_tokens, drafts]
            if num_branches:
                inputs.append(self.jacobi_branch_tokens(draft_probabilities[:, 0], drafts[:, 0], num_branches))
            inputs = torch.cat(inputs, dim=1)
            return torch.cat([inputs, inputs]) if use_guidance else inputs

        # The first drafts, and the state of every image: its accepted tokens `num_tokens`, as many in its cache.
        num_tokens = torch.full((batch_size,), num_kept, device=device)
        draft_probabilities = self.jacobi_new_drafts(image_tokens, num_tokens[:, None] + draft_index)
        drafts = self.sample_from(draft_probabilities.flatten(0, 1), noise[:, num_kept, window:].flatten())
        drafts = drafts.view(batch_size, num_drafts)
        input_ids = torch.cat([input_ids, next_inputs(drafts[:, :0], drafts, draft_probabilities)], dim=1)
        cache_lengths, longest_cache, done = torch.zeros_like(num_tokens), 0, num_kept

        for call in range(num_tokens_total - num_kept):
            # 1. One transformer call over the new tokens of every image, each after its own cached tokens: the
            # window at the slots of its positions, the branches at spare slots past it, at the first draft's position.
            num_window = input_ids.shape[1] - num_branches
            slots = cache_lengths[:, None] + key_index[: input_ids.shape[1]]
            last_slots = cache_lengths[:, None] + (num_window - window)  # the last accepted token's
            positions = slots
            if num_branches:  # the branches' slots follow the window's; their position is the first draft's
                positions = torch.where(slots < last_slots + window, slots, last_slots + 1)
            key_length = len(key_index)
            if cache_implementation != "static":
                key_length = min(key_length, longest_cache + input_ids.shape[1])
            mask = self.jacobi_attention_mask(slots, last_slots, num_window, key_index[:key_length], unmasked, masked)
            if use_guidance:
                slots, positions, mask = (torch.cat([tensor, tensor]) for tensor in (slots, positions, mask))
            cache.set_positions(slots, key_length)
            logits = self.transformer(
                input_ids=input_ids,
                position_ids=positions.clamp(max=max_position),  # past the last token: rows that are done
                attention_mask=mask,
                cache=cache,
                use_cache=True,
                logits_to_keep=window + num_branches,
            ).logits
            logits = self.guide(logits.float(), guidance_scale)
            probabilities = self.jacobi_probabilities(logits, logits_processor, image_tokens, greedy)
            probabilities, branch_probabilities = probabilities[:, :window], probabilities[:, window:]
            logits = logits[:, :window]
            numbers = noise[:, min(num_kept + call, num_tokens_total - 1)]

            # 2. Accept the leading drafts that pass `u * q < p`, then one token from the residual (or from `p` when
            # every draft passed: the window's last position has no draft, `q = 0`).
            draft_p = probabilities[:, :num_drafts].gather(2, drafts[..., None])[..., 0]
            draft_q = draft_probabilities.gather(2, drafts[..., None])[..., 0]
            accepted = numbers[:, 1:window] * draft_q < draft_p
            num_accepted = accepted.cumprod(dim=1).sum(dim=1)
            at_rejection = num_accepted[:, None, None].expand(-1, 1, codebook_size)
            p = probabilities.gather(1, at_rejection)[:, 0]
            window_q[:, :num_drafts] = draft_probabilities
            q = window_q.gather(1, at_rejection)[:, 0]
            corrected = self.sample_from(self.jacobi_residual(p, q), numbers[:, 0])
            window_tokens = torch.cat([drafts, corrected[:, None]], dim=1)
            window_tokens = window_tokens.scatter(1, num_accepted[:, None], corrected[:, None])
            advance = torch.minimum(num_accepted + 1, num_tokens_total - num_tokens)
            if num_branches:
                # A rejected first draft replaced by a branch's token: that branch predicted the next position after
                # exactly the accepted tokens, so the next token is drawn from it, with the acceptance number of the
                # second draft (unused once the first is rejected).
                branch_tokens = input_ids[:batch_size, num_window:]
                matches = branch_tokens == corrected[:, None]
                hit = matches.any(dim=1) & (num_accepted == 0) & (num_tokens + 2 <= num_tokens_total)
                branch = matches.long().argmax(dim=1)
                branch_p = branch_probabilities.gather(1, branch[:, None, None].expand(-1, 1, codebook_size))[:, 0]
                following = self.sample_from(branch_p, numbers[:, 2])
                window_tokens[:, 1] = torch.where(hit, following, window_tokens[:, 1])
                advance = advance + hit
            image_tokens.scatter_(1, num_tokens[:, None] + window_index, window_tokens)
            num_tokens = num_tokens + advance
            cache_lengths = num_tokens

            # 3. The next drafts: the predictions past the accepted run, then new positions.
            source = advance[:, None] + draft_index
            stale = probabilities.gather(1, source.clamp(max=window - 1)[..., None].expand(-1, -1, codebook_size))
            new = self.jacobi_new_drafts(image_tokens, num_tokens[:, None] + draft_index)
            draft_probabilities = torch.where((source < window)[..., None], stale, new)
            next_numbers = noise[:, min(num_kept + call + 1, num_tokens_total - 1), window:]
            drafts = self.sample_from(draft_probabilities.flatten(0, 1), next_numbers.flatten())
            drafts = drafts.view(batch_size, num_drafts)

            # 4. One host sync per call: the fewest and the most tokens of an image, and whether a branch was taken.
            counts = [*torch.aminmax(num_tokens), *([hit.any().long()] if num_branches else [])]
            fewest, longest_cache, *branch_taken = torch.stack(counts).tolist()
            if any(branch_taken):
                # Where a branch was taken, its keys and values move to its position's slot (the branches' slots
                # follow the window's).
                first_slots = last_slots[:, 0] + 1
                branch_slots = torch.where(hit, last_slots[:, 0] + window + branch, first_slots)
                if use_guidance:
                    branch_slots, first_slots = torch.cat([branch_slots, branch_slots]), torch.cat([first_slots] * 2)
                cache.copy_slot(branch_slots, first_slots)
            if callback_on_step_end is not None:
                self.run_step_callback(
                    callback_on_step_end,
                    callback_on_step_end_tensor_inputs,
                    fewest - 1,
                    image_tokens,
                    logits,
                    num_tokens,
                )
            progress_bar.update(fewest - done)
            done = fewest
            if done == num_tokens_total:
                break
            if self.interrupt:
                return None
            last_tokens = image_tokens.gather(1, (num_tokens - 1)[:, None])
            input_ids = next_inputs(last_tokens, drafts, draft_probabilities)
        return image_tokens[:, :num_tokens_total]


__all__ = ["DEFAULT_JACOBI_BRANCHES", "DEFAULT_JACOBI_WINDOW", "VimJacobiDecodingMixin"]
