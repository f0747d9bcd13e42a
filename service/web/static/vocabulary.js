// The lifecycle vocabulary as the domain defines it (service/web/vocabulary.py builds it
// from service/domain/lifecycles.py), read from the page shell's data block: no script
// keeps a copy of a status list, the priority order or who may move a claim where.

import { shellData } from "./dom.js";

const vocabulary = shellData().vocabulary;

/** Request priorities, most urgent first. */
export const PRIORITIES = vocabulary.priorities;
/** Incident severities, mildest first. */
export const SEVERITIES = vocabulary.severities;
/** Every event type, in the domain's order. */
export const EVENT_TYPES = vocabulary.event_types;
/** The scopes a token may be narrowed to ("read" alone is read only). */
export const TOKEN_SCOPES = vocabulary.token_scopes;

const FINAL_REQUEST = new Set(vocabulary.final_request_statuses);
const ENDED_CLAIM = new Set(vocabulary.ended_claim_statuses);

/** A request that can no longer change: fulfilled, cancelled or expired. */
export const isFinalRequest = (request) => FINAL_REQUEST.has(request.status);
/** A claim that ended early: its units went back to the request. */
export const isEndedClaim = (claim) => ENDED_CLAIM.has(claim.status);

/** 0 for the most urgent priority; an unknown one ranks after every known one. */
export function priorityRank(priority) {
  const rank = PRIORITIES.indexOf(priority);
  return rank < 0 ? PRIORITIES.length : rank;
}

/**
 * The statuses `party` ("requester", "responder") may move a claim to from `status`,
 * on a request of `kind`: the domain's transition rule, asked of every case.
 */
export function claimMoves(kind, status, party) {
  return vocabulary.claim_moves[kind]?.[status]?.[party] ?? [];
}

const OPEN_OFFER = new Set(vocabulary.open_offer_statuses);

/** An offer still waiting for an answer: open, or countered. */
export const isOpenOffer = (offer) => OPEN_OFFER.has(offer.status);

/** The statuses `party` ("requester", "offerer") may move an offer in `status` to. */
export function offerMoves(status, party) {
  return vocabulary.offer_moves[status]?.[party] ?? [];
}
