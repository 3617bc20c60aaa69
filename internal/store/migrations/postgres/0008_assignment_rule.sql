-- Which governance rule made an assignment, and which of its conditions
-- matched (docs/rules.md). NULL and '' for assignments a person made.
--
-- rule_id is not a foreign key on purpose: disabling or deleting a rule
-- keeps the assignments it made, and they keep naming it.
ALTER TABLE assignment ADD COLUMN rule_id BIGINT;
ALTER TABLE assignment ADD COLUMN rule_condition TEXT COLLATE "C" NOT NULL DEFAULT '';

-- Running a rule with override replaces the assignments it made.
CREATE INDEX assignment_rule ON assignment (rule_id, state) WHERE rule_id IS NOT NULL;
